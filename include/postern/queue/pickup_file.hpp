// queue/pickup_file.hpp — the versioned file `postern sendmail` leaves in
// <spool_dir>/pickup/ for the server's pickup service (Postfix's maildrop
// queue file, in miniature): one line of JSON, LF, then the message.
//   {"version":1,"sender":"alice@host","recipients":["bob@example.test"],
//    "uid":1000,"login":"alice","time":1795000000,"full_name":"Alice"}
// The message is RFC 5322 text with CRLF line ends, not dot-stuffed.
// Nothing in the file is trusted by itself: it was written by any local
// user. decode() checks the shape (the version, every key and type, the
// addresses, no bare CR or LF in the message); the pickup service then
// checks the identity against the file's owner (server/pickup_service.hpp).
// Errors: errc::unsupported_version, errc::corrupt.
// Pure.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "postern/util/result.hpp"

namespace postern::queue {

constexpr int pickup_version = 1;

struct pickup_header {
    std::string sender;                  // without brackets; empty for "<>"
    std::vector<std::string> recipients; // at least one
    std::uint32_t uid = 0;               // the submitting user, as the writer claims
    std::string login;                   // its login name, as the writer claims
    std::int64_t time = 0;               // unix seconds of the submission
    std::string full_name;               // -F, for an added From: ("" = none)

    bool operator==(const pickup_header&) const = default;
};

struct pickup_file {
    pickup_header header;
    std::string message;
};

std::string encode_pickup(const pickup_header& h, std::string_view message);
util::result<pickup_file> decode_pickup(std::string_view bytes);

} // namespace postern::queue
