//! The dry-run sentence: "Will assign 11 challenges to 24 learners".

use crate::catalog::ItemCounts;

fn counted(n: u32, singular: &str, plural: &str) -> String {
    format!("{n} {}", if n == 1 { singular } else { plural })
}

pub fn summary(items: ItemCounts, learners: u32) -> String {
    format!("Will assign {} to {}", what(items), counted(learners, "learner", "learners"))
}

/// The sentence for a new-starters assignment, which reaches nobody today.
pub fn new_starters_summary(items: ItemCounts) -> String {
    format!("Will assign {} to each new starter", what(items))
}

fn what(items: ItemCounts) -> String {
    match (items.challenges, items.scenarios) {
        (0, 0) => "0 items".to_owned(),
        (c, 0) => counted(c, "challenge", "challenges"),
        (0, s) => counted(s, "scenario", "scenarios"),
        (c, s) => format!("{} and {}", counted(c, "challenge", "challenges"), counted(s, "scenario", "scenarios")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_like_the_product_copy() {
        let items = |challenges, scenarios| ItemCounts { challenges, scenarios };
        assert_eq!(summary(items(11, 0), 24), "Will assign 11 challenges to 24 learners");
        assert_eq!(summary(items(1, 0), 1), "Will assign 1 challenge to 1 learner");
        assert_eq!(summary(items(0, 12), 0), "Will assign 12 scenarios to 0 learners");
        assert_eq!(summary(items(22, 1), 3), "Will assign 22 challenges and 1 scenario to 3 learners");
        assert_eq!(summary(items(0, 0), 2), "Will assign 0 items to 2 learners");
        assert_eq!(new_starters_summary(items(11, 0)), "Will assign 11 challenges to each new starter");
    }
}
