// fuzz_envelope — queue::decode_envelope on the input as an envelope.json.
// Damaged records must come back as errors (the store quarantines them),
// never as a crash or an exception. A record that decodes encodes to text
// that decodes to the same entry (queue/entry.hpp).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_support.hpp"

#include "postern/queue/entry.hpp"

using namespace postern;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    auto e = queue::decode_envelope(fuzz::as_view(data, size));
    if (!e)
        return 0;
    const auto text = queue::encode_envelope(*e);
    auto again = queue::decode_envelope(text);
    POSTERN_FUZZ_CHECK(again.has_value(), text.c_str());
    POSTERN_FUZZ_CHECK(*again == *e, "encode/decode changed the entry");
    POSTERN_FUZZ_CHECK(queue::encode_envelope(*again) == text, "encoding is not stable");
    (void)e->all_final();
    return 0;
}
