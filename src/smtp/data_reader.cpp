#include "postern/smtp/data_reader.hpp"

namespace postern::smtp {

namespace {

// RFC 5321 4.5.3.1.6: 1000 octets including CRLF.
constexpr std::size_t max_line = 998;

} // namespace

void data_reader::emit(std::string_view s)
{
    size_ += s.size();
    if (size_ > max_size_) {
        too_big_ = true;
        body_.clear();
        body_.shrink_to_fit();
        return;
    }
    if (ok())
        body_.append(s);
}

void data_reader::count_line(std::size_t n)
{
    line_len_ += n;
    if (line_len_ > max_line)
        long_line_ = true;
}

void data_reader::end_chunks()
{
    if (framing_ == framing::chunks) {
        if (state_ == state::cr) {
            bare_cr_ = true;
            emit("\r");
        } else if (state_ == state::mid) {
            emit("\r\n");
        }
    }
    state_ = state::done;
}

std::size_t data_reader::consume(std::string_view in)
{
    if (framing_ == framing::binary) {
        // RFC 3030 3: BINARYMIME content has no lines; only the size counts.
        emit(in);
        return in.size();
    }
    std::size_t i = 0;
    const std::size_t n = in.size();
    while (i < n && state_ != state::done) {
        char c = in[i];
        switch (state_) {
        case state::mid: {
            // Fast path: copy a run of ordinary octets in one append.
            std::size_t j = i;
            while (j < n && in[j] != '\r' && in[j] != '\n')
                ++j;
            if (j > i) {
                emit(in.substr(i, j - i));
                count_line(j - i);
                i = j;
                continue;
            }
            if (c == '\r') {
                state_ = state::cr;
            } else { // bare LF: content, not a line end
                bare_lf_ = true;
                emit("\n");
                count_line(1);
            }
            ++i;
            break;
        }
        case state::bol:
            if (c == '.' && framing_ == framing::dot_stuffed) {
                // RFC 5321 4.5.3.1.6: the limit does not count the dot
                // duplicated for transparency.
                state_ = state::dot;
                ++i;
            } else {
                state_ = state::mid; // reprocess c in mid
            }
            break;
        case state::cr:
            if (c == '\n') {
                emit("\r\n");
                line_len_ = 0;
                state_ = state::bol;
                ++i;
            } else { // bare CR: keep it as content, reprocess c
                bare_cr_ = true;
                emit("\r");
                count_line(1);
                state_ = state::mid;
            }
            break;
        case state::dot:
            // RFC 5321 4.5.2: a leading '.' is removed; "." CRLF ends the data.
            if (c == '\r') {
                state_ = state::dot_cr;
                ++i;
            } else {
                state_ = state::mid;
            }
            break;
        case state::dot_cr:
            if (c == '\n') {
                state_ = state::done;
                ++i;
            } else { // ".<CR>x": a bare CR after an unstuffed dot
                bare_cr_ = true;
                emit("\r");
                count_line(1);
                state_ = state::mid;
            }
            break;
        case state::done:
            break;
        }
    }
    return i;
}

} // namespace postern::smtp
