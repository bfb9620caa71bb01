//! Which of the template's functions is running: set around each invocation, read by the permission
//! recorder ([`crate::iam`]) and the fault injector ([`crate::faults`]), which both act only on a
//! function's own AWS calls.

tokio::task_local! {
    static FUNCTION: &'static str;
}

/// Runs `work` as the function `logical_id` of the template: AWS calls it makes are recorded as that
/// function's.
pub async fn as_function<F: Future>(logical_id: &'static str, work: F) -> F::Output {
    FUNCTION.scope(logical_id, work).await
}

/// The function whose code is running, if any (not the harness's own calls).
pub(crate) fn current_function() -> Option<&'static str> {
    FUNCTION.try_with(|f| *f).ok()
}
