#include "postern/util/error.hpp"

#include <cerrno>
#include <string>

#include "postern/util/result.hpp"

namespace postern::util {

namespace {

class category final : public std::error_category {
public:
    const char* name() const noexcept override { return "postern"; }
    std::string message(int ev) const override
    {
        switch (static_cast<errc>(ev)) {
        case errc::syntax: return "syntax error";
        case errc::too_long: return "too long";
        case errc::limit: return "limit exceeded";
        case errc::not_found: return "not found";
        case errc::exists: return "already exists";
        case errc::corrupt: return "corrupt record";
        case errc::unsupported_version: return "unsupported record version";
        case errc::io: return "I/O error";
        case errc::refused: return "refused by policy";
        case errc::shutting_down: return "shutting down";
        case errc::needs_smtputf8: return "non-ASCII without SMTPUTF8";
        }
        return "unknown postern error";
    }
};

} // namespace

const std::error_category& postern_category() noexcept
{
    static const category c;
    return c;
}

std::error_code make_error_code(errc e) noexcept
{
    return {static_cast<int>(e), postern_category()};
}

std::error_code last_os_error()
{
    return {errno, std::generic_category()};
}

} // namespace postern::util
