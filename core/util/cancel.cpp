#include "util/cancel.hpp"

#include <csignal>

namespace contractor::util {
namespace {

volatile std::sig_atomic_t received_signal = 0;

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
