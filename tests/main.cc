// Unit-test entry point (doctest).  Test files live beside it, mirroring
// the module they test: tests/policy-cache/sts_policy_test.cc tests
// policy-cache/sts_policy.cc.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
