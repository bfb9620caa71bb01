//! The load-and-fault run, short (`testkit::load`, the bench's run made smaller): several orgs under
//! concurrent traffic over every route and streaming platform events, their clocks moved across due
//! dates, while the functions' AWS calls fail and the publisher and workers are killed mid-run. It
//! fails if any promise the service makes is broken afterwards. Its own test binary: the fault plan is
//! process-wide.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_promise_holds_under_load_with_faults_and_kills() {
    let report = testkit::load::run(testkit::load::Settings::short()).await;
    println!("{}", report.markdown());
    let broken = report.broken();
    assert!(broken.is_empty(), "broken promises: {broken:#?}\n\n{}", report.markdown());
}
