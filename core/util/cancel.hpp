#pragma once

namespace contractor::util {

// Ctrl-C and SIGTERM: the handlers only record the signal; long waits (child processes, VM
// boots) poll cancel_requested() and unwind by throwing Interrupted, so destructors tear down
// VMs, overlays and staging folders on the way out.
void install_cancel_handlers();

// Whether SIGINT or SIGTERM arrived; the signal number, or 0.
int cancel_signal();
inline bool cancel_requested() {
    return cancel_signal() != 0;
}

// Records a cancellation as if `signal` had arrived (for tests).
void request_cancel(int signal);
// Forgets a recorded cancellation (for tests).
void clear_cancel();

} // namespace contractor::util
