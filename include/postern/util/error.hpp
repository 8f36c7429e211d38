// util/error.hpp — postern's own error codes, one category for every module.
// Use std::errc for plain OS conditions; these name what the OS cannot.
#pragma once

#include <system_error>

namespace postern::util {

enum class errc {
    syntax = 1,          // malformed input (address, command, JSON, record)
    too_long,            // a length bound was exceeded
    limit,               // a count bound was exceeded
    not_found,           // no such entry / user / key
    exists,              // the thing is already there (idempotent retry)
    corrupt,             // a stored record failed validation
    unsupported_version, // a stored record of a version we do not read
    io,                  // an I/O step failed (details in the log line)
    refused,             // policy said no
    shutting_down,       // the component is stopping
    needs_smtputf8,      // non-ASCII where the client did not ask for SMTPUTF8
};

const std::error_category& postern_category() noexcept;
std::error_code make_error_code(errc e) noexcept;

} // namespace postern::util

template <>
struct std::is_error_code_enum<postern::util::errc> : std::true_type {};
