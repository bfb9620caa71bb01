# How `sam build` builds the functions (BuildMethod: makefile in template.yaml). SAM runs
# `make build-<LogicalId>` here with ARTIFACTS_DIR set; samconfig.toml has it build in source, so every
# function reuses this checkout's target/ and nothing is copied.
#
# One `cargo lambda build -p <package>` per function: cargo unifies features across the packages of one
# invocation, so building them together would give every function the S3 client's features (export-csv's)
# and more. Functions with the same dependencies share every compiled crate; only their links are their own.
# SAM gets the bootstrap itself and zips it when it packages the stack (cargo lambda's own zip took 27 s
# per unoptimised bootstrap, and SAM would unzip it again).
#
# LAMBDA_PROFILE (default `release`, what a deployment runs) is the cargo profile the bootstraps are built
# with. infra/test.sh sets `deploy-check` (Cargo.toml): the same sam build → this Makefile → cargo lambda
# → bootstrap → artifacts path, without the size optimisation (LTO, one codegen unit) that costs a minute of
# linking per function and proves nothing about the path.
LAMBDA_PROFILE ?= release
# A deploy-check build turns on each function's optional `workspace-hack` dependency: every function then
# resolves the same third-party features, so the dependencies compile once for all of them. A release
# build does not: each function keeps its own features, and so its size.
ifeq ($(LAMBDA_PROFILE),deploy-check)
LAMBDA_FEATURES := --features workspace-hack
endif

SHELL := /bin/bash
ROOT := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
# cargo-lambda (with the zig it links with) comes from the project's venv: infra/local/stack.sh install-build,
# which infra/sam.sh build runs.
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
build-OrgJobsFunction: PACKAGE := org-jobs
build-OutboxPublisherFunction: PACKAGE := outbox-publisher
build-WebhookEndpointsFunction: PACKAGE := webhook-endpoints
build-WebhookDispatcherFunction: PACKAGE := webhook-dispatcher
build-WebhookDeliveryFunction: PACKAGE := webhook-delivery

build-%:
	$(if $(PACKAGE),,$(error $@: no package for this function; add "$@: PACKAGE := <package>" to the Makefile))
	cd "$(ROOT)" && cargo lambda build --profile $(LAMBDA_PROFILE) --x86-64 -p $(PACKAGE) $(LAMBDA_FEATURES)
	install -m 755 "$(ROOT)/target/lambda/$(PACKAGE)/bootstrap" "$(ARTIFACTS_DIR)/bootstrap"
