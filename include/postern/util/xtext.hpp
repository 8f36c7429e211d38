// util/xtext.hpp — the xtext encoding of ESMTP parameter values (RFC 3461
// 4: ENVID, ORCPT; also RFC 4954 5 AUTH=): octets 33–126 except '+' and '='
// stand for themselves, any other octet is "+" and two upper-case hex digits.
// Pure; any thread.
#pragma once

#include <string>
#include <string_view>

#include "postern/util/result.hpp"

namespace postern::util {

// The xtext form of any octets (RFC 3461 4).
std::string xtext_encode(std::string_view octets);

// The octets an xtext stands for; errc::syntax for a character outside
// xchar, a '+' not followed by two hex digits, or lower-case hex (RFC 3461
// 4 has hexchar = "+" followed by upper-case hex; Postfix accepts lower
// case too, and so do we — the RFC's ABNF is the sender's duty).
result<std::string> xtext_decode(std::string_view text);

} // namespace postern::util
