// tests/smtp/transcript_text.hpp — text helpers shared by the server and the
// client transcript runners (test_server_session.cpp, test_client_session.cpp):
// C escapes, word splitting, reading the transcript files.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace postern::smtp::transcript {

// C escapes \r \n \t \0 \\ \xHH; false on a malformed escape.
bool unescape(std::string_view s, std::string& out);
// Whitespace-separated words.
std::vector<std::string> words(std::string_view s);
std::string read_all(const std::filesystem::path& p);
// The *.txt files of dir, sorted by name.
std::vector<std::filesystem::path> files_in(const std::filesystem::path& dir);

} // namespace postern::smtp::transcript
