#include "postern/dns/resolver.hpp"

namespace postern::dns {

const char* to_string(status s) noexcept
{
    switch (s) {
    case status::ok: return "ok";
    case status::nxdomain: return "nxdomain";
    case status::nodata: return "nodata";
    case status::temporary: return "temporary";
    }
    return "?";
}

} // namespace postern::dns
