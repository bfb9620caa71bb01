//! Consumer of `platform.users` (`user.created`, `user.updated`, `user.deactivated`) and `platform.teams` (`team.member_added`, `team.member_removed`, `team.renamed`, `team.deleted`): keeps the user and directory current and moves learners into and out of assignments.
//!
//! [`events::Consumer`] parses the event and runs its use case (`service`); this binary is the Lambda the
//! template's rule invokes. The local gateway runs the same [`events::entry::CONSUME`].

fn main() -> Result<(), events::entry::Error> {
    events::entry::run(events::entry::CONSUME)
}
