// daemon/route_explain.hpp — the I/O shell of `postern route explain
// ADDRESS`: parses the address, builds the route table, looks up the MX
// hosts of the remote domains route::explain() names (through the
// configured DNS, as delivery would), prints the explanation.
// Exit: 0 accepted (or relayed for permitted clients), 1 refused,
// 64 (EX_USAGE) for an address that does not parse.
// Thread: runs its own io_context on the calling thread until the lookups end.
#pragma once

#include <string_view>

#include "postern/config/config.hpp"

namespace postern::daemon {

int route_explain(const config::settings& s, std::string_view address);

} // namespace postern::daemon
