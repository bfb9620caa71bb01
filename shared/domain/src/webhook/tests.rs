use super::*;

#[test]
fn an_endpoint_url_is_public_https_on_an_allowed_port_and_nothing_else() {
    let ok = [
        "https://hooks.example.com/jira",
        "https://hooks.example.com:8443/x?y=1",
        "https://hooks.example.com:443/",
        "https://93.184.216.34/hook",
        "https://[2606:2800:220:1:248:1893:25c8:1946]/hook",
    ];
    for raw in ok {
        assert!(EndpointUrl::parse(raw).is_ok(), "{raw}");
    }
    let refused = [
        ("http://hooks.example.com/", UrlError::NotHttps),
        ("ftp://hooks.example.com/", UrlError::NotHttps),
        ("hooks.example.com/x", UrlError::Unparsable),
        ("https://user:pass@hooks.example.com/", UrlError::Credentials),
        ("https://user@hooks.example.com/", UrlError::Credentials),
        ("https://hooks.example.com/#frag", UrlError::Fragment),
        ("https://hooks.example.com:8080/", UrlError::Port),
        ("https://hooks.example.com:22/", UrlError::Port),
        ("https://localhost/", UrlError::Address("a local name")),
        ("https://api.localhost./", UrlError::Address("a local name")),
        ("https://metadata.google.internal/", UrlError::Address("a local name")),
        ("https://127.0.0.1/", UrlError::Address("a loopback address")),
        ("https://169.254.169.254/latest/meta-data", UrlError::Address("a link-local address")),
        ("https://10.0.0.8/", UrlError::Address("a private address")),
        ("https://[::1]/", UrlError::Address("a loopback address")),
        ("https://[::ffff:169.254.169.254]/", UrlError::Address("a link-local address")),
        ("https://[fd00:ec2::254]/", UrlError::Address("a private address")),
        // The URL parser reads every spelling of an IPv4 address as that address.
        ("https://2130706433/", UrlError::Address("a loopback address")),
        ("https://0x7f.1/", UrlError::Address("a loopback address")),
    ];
    for (raw, error) in refused {
        assert_eq!(EndpointUrl::parse(raw), Err(error), "{raw}");
    }
    let long = format!("https://hooks.example.com/{}", "a".repeat(MAX_URL_CHARS));
    assert_eq!(EndpointUrl::parse(&long), Err(UrlError::TooLong));
}

/// Every class of address a delivery must not reach, in both families and in IPv6's IPv4 forms.
#[test]
fn only_public_unicast_addresses_are_reachable() {
    let refused = [
        ("0.0.0.0", "an unspecified address"),
        ("0.1.2.3", "an unspecified address"),
        ("127.0.0.1", "a loopback address"),
        ("127.255.255.254", "a loopback address"),
        ("10.1.2.3", "a private address"),
        ("172.16.0.1", "a private address"),
        ("172.31.255.255", "a private address"),
        ("192.168.1.1", "a private address"),
        ("169.254.169.254", "a link-local address"),
        ("100.64.0.1", "a shared (CGNAT) address"),
        ("100.127.255.255", "a shared (CGNAT) address"),
        ("224.0.0.1", "a multicast address"),
        ("239.255.255.250", "a multicast address"),
        ("255.255.255.255", "a reserved address"),
        ("240.0.0.1", "a reserved address"),
        ("192.0.0.8", "a reserved address"),
        ("198.18.0.1", "a reserved address"),
        ("192.0.2.1", "a documentation address"),
        ("::", "an unspecified address"),
        ("::1", "a loopback address"),
        ("fe80::1", "a link-local address"),
        ("fec0::1", "a link-local address"),
        ("fc00::1", "a private address"),
        ("fd00:ec2::254", "a private address"),
        ("ff02::1", "a multicast address"),
        ("2001:db8::1", "a documentation address"),
        ("::ffff:127.0.0.1", "a loopback address"),
        ("::ffff:169.254.169.254", "a link-local address"),
        ("::ffff:10.0.0.1", "a private address"),
        ("::10.0.0.1", "a private address"),
        ("64:ff9b::a9fe:a9fe", "a link-local address"),
        ("2002:7f00:1::", "a loopback address"),
        ("100::1", "a reserved address"),
        ("192.88.99.1", "a reserved address"),
        ("2001::1", "a reserved address"),
        ("2001:1ff::1", "a reserved address"),
        ("3fff::1", "a documentation address"),
    ];
    for (ip, reason) in refused {
        assert_eq!(refused_address(ip.parse().unwrap()), Some(reason), "{ip}");
    }
    for ip in [
        "93.184.216.34",
        "8.8.8.8",
        "100.63.255.255",
        "100.128.0.1",
        "172.32.0.1",
        "2606:4700::1111",
        "2001:4860::8888",
    ] {
        assert_eq!(refused_address(ip.parse().unwrap()), None, "{ip}");
    }
}

#[test]
fn the_host_and_port_to_connect_to_come_from_the_url() {
    let url = EndpointUrl::parse("https://hooks.example.com:8443/x").unwrap();
    assert_eq!(url.host_and_port(), ("hooks.example.com".to_owned(), 8443));
    let url = EndpointUrl::parse("https://[2606:4700::1111]/x").unwrap();
    assert_eq!(url.host_and_port(), ("2606:4700::1111".to_owned(), 443));
}
