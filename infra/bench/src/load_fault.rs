//! The load-and-fault run in full (`testkit::load`): prints its tables for infra/bench/README.md and exits
//! non-zero if any promise was broken. Run against the local stack:
//! `source <stack>/stack.env && cargo run --release -p bench --bin load-fault-bench`.

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let report = testkit::load::run(testkit::load::Settings::full()).await;
    println!("{}", report.markdown());
    let broken = report.broken();
    if !broken.is_empty() {
        eprintln!("broken promises: {broken:#?}");
        std::process::exit(1);
    }
}
