#pragma once

// contractor-manager: owns worker VMs for the CLI. `serve` speaks the frame protocol on stdin
// and stdout (a pipe from the CLI in the direct topology, an SSH channel in the nested one).
namespace contractor::manager {

// The whole program; returns the exit status.
int run(int argc, char** argv);

} // namespace contractor::manager
