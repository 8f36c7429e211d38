// fuzz_config — config::parse on the input as a configuration file.
// Every failure must be a config::error naming the source (DESIGN promise
// 6: the daemon turns it into exit status 2); any other exception escaping
// is a crash. A configuration that parses survives to_json(): the text
// parses again to the same effective configuration (config/config.hpp).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_support.hpp"

#include "postern/config/config.hpp"

using namespace postern;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view text = fuzz::as_view(data, size);
    config::settings s;
    try {
        s = config::parse(text, "<fuzz>");
    } catch (const config::error& e) {
        POSTERN_FUZZ_CHECK(std::string_view(e.what()).rfind("<fuzz>", 0) == 0, e.what());
        return 0;
    }
    const auto json = config::to_json(s);
    config::settings again;
    try {
        again = config::parse(json, "<again>");
    } catch (const config::error& e) {
        std::fprintf(stderr, "to_json() output:\n%s\n", json.c_str());
        POSTERN_FUZZ_CHECK(false, e.what());
    }
    POSTERN_FUZZ_CHECK(config::to_json(again) == json, "to_json() does not round-trip");
    return 0;
}
