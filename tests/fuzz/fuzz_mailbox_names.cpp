// fuzz_mailbox_names — the text parsers of the IMAP mail store: modified
// UTF-7 (RFC 3501 5.1.3), folder names and their Maildir++ directories,
// LIST patterns, and the UID index file.
//
// Input: arbitrary octets, tried as a wire name, a UTF-8 name, a directory
// entry, an index file, and (split at the first NUL) a pattern and a name.
//
// Invariants checked: a decoded name re-encodes to what decode accepts and
// decodes back to itself; an encoded UTF-8 name decodes back to it; a valid
// name's directory maps back to the name; "*" matches every name and "%"
// exactly those without a separator; a decoded index encodes to text that
// decodes to the same index, with ascending UIDs below UIDNEXT.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_support.hpp"

#include "postern/mailbox/folder.hpp"
#include "postern/mailbox/uid_index.hpp"

namespace {

using namespace postern;

void check_mutf7(std::string_view in)
{
    if (auto utf8 = mailbox::mutf7_decode(in)) {
        auto again = mailbox::mutf7_encode(*utf8);
        POSTERN_FUZZ_CHECK(again.has_value(), "decoded name does not encode");
        auto back = mailbox::mutf7_decode(*again);
        POSTERN_FUZZ_CHECK(back && *back == *utf8, "re-encoded name decodes differently");
    }
    if (auto wire = mailbox::mutf7_encode(in)) {
        auto back = mailbox::mutf7_decode(*wire);
        POSTERN_FUZZ_CHECK(back && *back == in, "encoded UTF-8 does not decode back");
    }
}

void check_folder(std::string_view in)
{
    if (auto dir = mailbox::folder_dir(in); dir && !dir->empty()) {
        auto name = mailbox::folder_name_of_dir(*dir);
        POSTERN_FUZZ_CHECK(name && *name == *mailbox::canonical_folder_name(in), "directory does not map back");
        POSTERN_FUZZ_CHECK(dir->size() <= mailbox::max_dir_name && dir->find('/') == std::string::npos,
                           "directory name unsafe");
    }
    if (auto name = mailbox::folder_name_of_dir(in)) {
        auto dir = mailbox::folder_dir(*name);
        POSTERN_FUZZ_CHECK(dir && *dir == in, "folder name does not map to its directory");
    }
}

void check_pattern(std::string_view in)
{
    const auto nul = in.find('\0');
    const std::string_view pattern = in.substr(0, nul);
    const std::string_view name = nul == std::string_view::npos ? std::string_view{} : in.substr(nul + 1);
    if (name.size() > mailbox::max_dir_name || pattern.size() > 64)
        return;
    (void)mailbox::pattern_matches(pattern, name);
    POSTERN_FUZZ_CHECK(mailbox::pattern_matches("*", name), "* must match everything");
    POSTERN_FUZZ_CHECK(mailbox::pattern_matches("%", name) == (name.find(mailbox::separator) == std::string_view::npos),
                       "% must match exactly the names without a separator");
}

void check_index(std::string_view in)
{
    auto index = mailbox::decode_index(in);
    if (!index)
        return;
    std::uint32_t last = 0;
    for (const auto& e : index->entries) {
        POSTERN_FUZZ_CHECK(e.uid > last && e.uid < index->uidnext, "UIDs not ascending below UIDNEXT");
        last = e.uid;
    }
    const auto text = mailbox::encode_index(*index);
    auto again = mailbox::decode_index(text);
    POSTERN_FUZZ_CHECK(again && mailbox::encode_index(*again) == text, "index does not round-trip");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const auto in = fuzz::as_view(data, size);
    check_mutf7(in);
    check_folder(in);
    check_pattern(in);
    check_index(in);
    return 0;
}
