#include "connection/chain.hpp"

#include "connection/local_hop.hpp"
#include "connection/ssh_hop.hpp"

namespace contractor::connection {

Chain::Chain() {
    hops_.push_back(std::make_unique<LocalHop>());
}

Chain::~Chain() {
    while (!hops_.empty()) {
        hops_.pop_back();
    }
}

void Chain::add_ssh(const ssh::Endpoint& endpoint, std::chrono::milliseconds timeout) {
    if (hops_.size() == 1) {
        hops_.push_back(std::make_unique<SshHop>(endpoint, timeout));
        return;
    }
    auto tunnel = hops_.back()->open_tunnel(endpoint.host, endpoint.port);
    hops_.push_back(std::make_unique<SshHop>(endpoint, std::move(tunnel), timeout));
}

void Chain::add_ssh(const ssh::Endpoint& endpoint, std::unique_ptr<ssh::Session> session) {
    hops_.push_back(std::make_unique<SshHop>(endpoint, std::move(session)));
}

std::string Chain::describe() const {
    std::string text;
    for (const auto& hop : hops_) {
        text += (text.empty() ? "" : " -> ") + hop->describe();
    }
    return text;
}

} // namespace contractor::connection
