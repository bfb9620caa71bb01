# How `sam build` builds the functions (BuildMethod: makefile in template.yaml). SAM runs
# `make build-<LogicalId>` here with ARTIFACTS_DIR set; samconfig.toml has it build in source, so every
# function reuses this checkout's target/ and nothing is copied.
#
# One `cargo lambda build -p <package>` per function: cargo unifies features across the packages of one
# invocation, so building them together would give every function the S3 client's features (export-csv's)
# and more. Functions with the same dependencies share every compiled crate; only their links are their own.
# The zip is what infra/test.sh measures; SAM gets the bootstrap inside it.

SHELL := /bin/bash
ROOT := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
# cargo-lambda (with the zig it links with) comes from the project's venv: infra/local/stack.sh install.
export PATH := $(ROOT)/.tools/venv/bin:$(PATH)

build-CreateAssignmentFunction: PACKAGE := create
build-ListAssignmentsFunction: PACKAGE := list
build-GetAssignmentFunction: PACKAGE := detail
build-PatchAssignmentFunction: PACKAGE := patch
build-LearnerAssignmentsFunction: PACKAGE := learner-view
build-ExportCsvFunction: PACKAGE := export-csv
build-ExportWorkerFunction: PACKAGE := export-worker
build-SarifFunction: PACKAGE := sarif
build-SarifWorkerFunction: PACKAGE := sarif-worker
build-RosterWorkerFunction: PACKAGE := roster-worker
build-AuditLogFunction: PACKAGE := audit-log
build-ComplianceFunction: PACKAGE := compliance
build-ProgressEventsFunction: PACKAGE := progress-events
build-MembershipEventsFunction: PACKAGE := membership-events
build-CourseEventsFunction: PACKAGE := course-events
build-RemindersFunction: PACKAGE := reminders
build-ReconcileFunction: PACKAGE := reconcile
build-OutboxPublisherFunction: PACKAGE := outbox-publisher

build-%:
	$(if $(PACKAGE),,$(error $@: no package for this function; add "$@: PACKAGE := <package>" to the Makefile))
	cd "$(ROOT)" && cargo lambda build --release --x86-64 --output-format zip -p $(PACKAGE)
	python3 -m zipfile -e "$(ROOT)/target/lambda/$(PACKAGE)/bootstrap.zip" "$(ARTIFACTS_DIR)"
	chmod 755 "$(ARTIFACTS_DIR)/bootstrap"
