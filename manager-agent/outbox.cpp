#include "manager-agent/outbox.hpp"

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

} // namespace contractor::manager
