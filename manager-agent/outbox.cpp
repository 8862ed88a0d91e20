#include "manager-agent/outbox.hpp"

#include "protocol/job.hpp"

namespace contractor::manager {

void Outbox::status(const std::string& text) {
    send({{"type", "status"}, {"text", text}});
}

void Outbox::phase(const std::string& name) {
    send({{"type", "phase"}, {"name", name}});
}

void Outbox::log(std::string_view stream, std::string_view phase, std::string_view bytes) {
    send({{"type", "log"}, {"stream", stream}, {"phase", phase}}, bytes);
}

void Outbox::send(nlohmann::json header, std::string_view payload) {
    const std::lock_guard lock(mutex_);
    writer_.send(std::move(header), payload);
}

Heartbeat::Heartbeat(Outbox& outbox) : outbox_(outbox) {
    thread_ = std::thread([this] {
        std::unique_lock lock(mutex_);
        while (!wake_.wait_for(lock, protocol::heartbeat_interval, [this] { return stopping_; })) {
            try {
                outbox_.send({{"type", "heartbeat"}});
            } catch (const std::exception&) {
                return;
            }
        }
    });
}

Heartbeat::~Heartbeat() {
    {
        const std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    thread_.join();
}

} // namespace contractor::manager
