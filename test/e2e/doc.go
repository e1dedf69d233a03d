// Package e2e runs the built collector binary, as a user would, against
// real clients and servers. Run with `make e2e-test`, which builds the
// binaries and passes their paths in FASTDEPLOY_COLLECTOR and
// FASTDEPLOY_DEPLOYER.
package e2e
