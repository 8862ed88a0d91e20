#include "util/cancel.hpp"

#include <atomic>
#include <csignal>

namespace contractor::util {
namespace {

// Written by the signal handlers and by other threads (the manager agent's inbox records a
// cancel frame from the CLI), read by every waiting loop: a lock-free atomic is safe for both.
std::atomic<int> received_signal{0};
static_assert(std::atomic<int>::is_always_lock_free, "the handler may only touch a lock-free flag");

extern "C" void record_signal(int signal) {
    received_signal = signal;
}

} // namespace

void install_cancel_handlers() {
    struct sigaction action {};
    action.sa_handler = record_signal;
    sigemptyset(&action.sa_mask);
    // No SA_RESTART: a blocking call returns EINTR so the waiting loop sees the flag sooner.
    sigaction(SIGINT, &action, nullptr);
    sigaction(SIGTERM, &action, nullptr);
}

int cancel_signal() {
    return received_signal;
}

void request_cancel(int signal) {
    received_signal = signal;
}

void clear_cancel() {
    received_signal = 0;
}

} // namespace contractor::util
