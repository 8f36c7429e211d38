// daemon/cli.hpp — the `postern` command line: serve, check-config, queue,
// route, sendmail, hash-password, --version, help. Exit statuses: 0 ok,
// 1 runtime failure, 2 configuration or usage error (DESIGN promise 6:
// before any port is bound); `route` and `sendmail` use sysexits.h.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "postern/config/config.hpp"

namespace postern::daemon {

int main(std::span<const std::string_view> args);

// The configuration every subcommand uses (config::locate): --config FILE
// when given, else $POSTERN_CONFIG, else /etc/postern/postern.json when it
// exists, else the embedded default. A configuration error is printed on
// stderr ("postern: configuration error: ...") and gives nullopt.
std::optional<config::settings> load_settings(const std::optional<std::string>& config_flag);

} // namespace postern::daemon
