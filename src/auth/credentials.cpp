#include "postern/auth/credentials.hpp"

#include <algorithm>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace postern::auth {

static_credentials::static_credentials(std::map<std::string, std::string, std::less<>> users,
                                       std::uint32_t least_iterations)
    : users_(std::move(users)), least_iterations_(std::max(least_iterations, floor_iterations))
{
    std::uint32_t costliest = 0;
    for (const auto& [name, encoded] : users_) {
        auto n = hash_iterations(encoded, least_iterations_);
        if (!n)
            throw std::invalid_argument("user '" + name + "': password is not a $pbkdf2-sha256$ hash");
        costliest = std::max(costliest, *n);
    }
    // The dummy only burns time: check() says no to an unknown user whatever it returns.
    dummy_ = hash_password("", costliest == 0 ? default_iterations : costliest);
}

util::result<bool> static_credentials::check(std::string_view username, std::string_view password)
{
    const auto it = users_.find(username);
    if (it == users_.end()) {
        // Spend the same KDF time as a known user, then say no.
        auto spent = verify_password(dummy_, password, floor_iterations);
        if (!spent)
            return spent.error();
        return false;
    }
    return verify_password(it->second, password, least_iterations_);
}

} // namespace postern::auth
