#pragma once

#include <libssh/libssh.h>

#include <memory>

// Owning handles for libssh objects: each frees its object exactly once.
namespace contractor::ssh {

struct KeyDeleter {
    void operator()(ssh_key key) const { ssh_key_free(key); }
};
struct SessionDeleter {
    void operator()(ssh_session session) const {
        ssh_disconnect(session);
        ssh_free(session);
    }
};
struct ChannelDeleter {
    void operator()(ssh_channel channel) const {
        ssh_channel_close(channel);
        ssh_channel_free(channel);
    }
};
struct StringDeleter {
    void operator()(char* text) const { ssh_string_free_char(text); }
};

using KeyPtr = std::unique_ptr<ssh_key_struct, KeyDeleter>;
using SessionPtr = std::unique_ptr<ssh_session_struct, SessionDeleter>;
using ChannelPtr = std::unique_ptr<ssh_channel_struct, ChannelDeleter>;
using StringPtr = std::unique_ptr<char, StringDeleter>;

} // namespace contractor::ssh
