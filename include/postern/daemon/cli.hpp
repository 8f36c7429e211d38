// daemon/cli.hpp — the `postern` command line: serve, check-config,
// --version, help. Exit statuses: 0 ok, 1 runtime failure, 2 configuration
// or usage error (DESIGN promise 6: before any port is bound).
#pragma once

#include <span>
#include <string_view>

namespace postern::daemon {

int main(std::span<const std::string_view> args);

} // namespace postern::daemon
