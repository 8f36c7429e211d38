#include "postern/mail/extension.hpp"

#include "postern/util/strings.hpp"

namespace postern::mail {

std::optional<extension_split> split_extension(std::string_view local_part,
                                               std::string_view delimiters) noexcept
{
    if (delimiters.empty())
        return std::nullopt;
    // Postfix split_addr(): "backwards compatibility: don't split owner-foo
    // or foo-request" (the sendmail list-owner conventions).
    if (delimiters.find('-') != std::string_view::npos) {
        constexpr std::string_view owner = "owner-";
        constexpr std::string_view request = "-request";
        if (local_part.size() >= owner.size() && util::iequals(local_part.substr(0, owner.size()), owner))
            return std::nullopt;
        if (local_part.size() > request.size() &&
            util::iequals(local_part.substr(local_part.size() - request.size()), request))
            return std::nullopt;
    }
    const auto at = local_part.find_first_of(delimiters);
    // A leading delimiter leaves no base to deliver to ("+tag" is a name).
    if (at == std::string_view::npos || at == 0)
        return std::nullopt;
    return extension_split{local_part.substr(0, at), local_part.substr(at + 1), local_part[at]};
}

} // namespace postern::mail
