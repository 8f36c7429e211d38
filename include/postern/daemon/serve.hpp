// daemon/serve.hpp — `postern serve`: wires the parts together and runs
// until SIGTERM/SIGINT. Order matters: the spool opens (and purges
// incoming/) and every listener binds before anything is accepted; a
// failure there exits 1 without serving.
// Threads: the event loop (this thread), the group committer, the
// delivery runner.
#pragma once

#include "postern/config/config.hpp"

namespace postern::daemon {

int serve(const config::settings& s);

// Loads the configured certificate and key (tls.certificate, tls.private_key)
// as serve() will. Throws config::error naming the configuration file, the
// key and OpenSSL's reason. Nothing to check when none is configured (the
// self-signed one is made by serve()).
void check_certificate(const config::settings& s);

} // namespace postern::daemon
