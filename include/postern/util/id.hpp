// util/id.hpp — queue ids and session ids.
// A queue id is 16 lower-case hex digits: 13 of microseconds since the epoch,
// then 3 of a per-process counter, so ids sort by arrival and stay unique within
// a process. Across restarts a clock step back could repeat one; the store
// creates entries with O_EXCL semantics and asks again on a clash.
// Thread: both generators are safe to call from any thread.
#pragma once

#include <cstdint>
#include <string>

#include "postern/util/clock.hpp"

namespace postern::util {

std::string make_queue_id(time_point now);
// 16 hex digits from a process-wide random sequence (log correlation only).
std::string make_session_id();
// A syntactic check for ids that reach file names (never trust a path part).
bool is_queue_id(std::string_view s) noexcept;

} // namespace postern::util
