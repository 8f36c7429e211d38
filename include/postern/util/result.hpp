// util/result.hpp — errors as values at module boundaries.
// result<T> holds either a T or a non-zero std::error_code (g++ 12 has no
// std::expected in C++20). Invariant: a result that holds a value reports
// error() == std::error_code{}. Not thread-safe; a plain value type.
#pragma once

#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

#include "postern/util/error.hpp"

namespace postern::util {

template <class T>
class [[nodiscard]] result {
public:
    result() requires std::is_default_constructible_v<T> : v_(std::in_place_index<0>) {}
    result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
    result(std::error_code ec) : v_(std::in_place_index<1>, ec) {}
    result(errc e) : v_(std::in_place_index<1>, make_error_code(e)) {}
    result(std::errc e) : v_(std::in_place_index<1>, std::make_error_code(e)) {}

    explicit operator bool() const noexcept { return v_.index() == 0; }
    bool has_value() const noexcept { return v_.index() == 0; }

    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T&& operator*() && { return std::move(*this).value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    std::error_code error() const noexcept
    {
        return v_.index() == 1 ? std::get<1>(v_) : std::error_code{};
    }

private:
    std::variant<T, std::error_code> v_;
};

template <>
class [[nodiscard]] result<void> {
public:
    result() = default;
    result(std::error_code ec) : ec_(ec) {}
    result(errc e) : ec_(make_error_code(e)) {}
    result(std::errc e) : ec_(std::make_error_code(e)) {}

    explicit operator bool() const noexcept { return !ec_; }
    bool has_value() const noexcept { return !ec_; }
    std::error_code error() const noexcept { return ec_; }

private:
    std::error_code ec_;
};

// The last OS error as an error_code (for wrappers around POSIX calls).
std::error_code last_os_error();

} // namespace postern::util
