//! Consumer of `platform.content` `custom_course.updated`: re-resolves what assignments on the course track.
//!
//! [`events::Consumer`] parses the event and runs its use case (`service`); this binary is the Lambda the
//! template's rule invokes. The local gateway runs the same [`events::entry::CONSUME`].

fn main() -> Result<(), events::entry::Error> {
    events::entry::run(events::entry::CONSUME)
}
