#pragma once

#include "connection/hop.hpp"
#include "ssh/session.hpp"

#include <chrono>
#include <memory>
#include <vector>

namespace contractor::connection {

// A connection chain: the local host, then any number of SSH hops, each reached through a
// tunnel of the one before (host -> manager -> worker). Commands run at the last hop.
class Chain {
public:
    // A chain of one hop: the local host.
    Chain();
    // Later hops depend on earlier ones, so they are closed first.
    ~Chain();
    Chain(Chain&&) = default;
    Chain& operator=(Chain&&) = default;

    // Adds an SSH hop to `endpoint`: a direct connection from the local host when the chain
    // has only that hop, otherwise a tunnel from the current last hop.
    void add_ssh(const ssh::Endpoint& endpoint, std::chrono::milliseconds timeout);
    // Adds an SSH hop over a session already connected from the local host.
    void add_ssh(const ssh::Endpoint& endpoint, std::unique_ptr<ssh::Session> session);

    Hop& last() { return *hops_.back(); }
    std::size_t size() const { return hops_.size(); }
    // "the local host -> ssh worker@127.0.0.1:40022", for messages.
    std::string describe() const;

private:
    std::vector<std::unique_ptr<Hop>> hops_;
};

} // namespace contractor::connection
