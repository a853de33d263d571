#pragma once
// One field list per Options struct drives its JSON (write and checked read), the Python class
// (bindings/options.hpp) and the documentation tables: each field is declared once.
//
// A struct opts in with a free function found by argument-dependent lookup, next to the struct:
//
//   struct KMeansOptions { std::int64_t num_codes = 256; KMeansInit init = KMeansInit::kPlusPlus; };
//   template <class V> void visit_fields(KMeansOptions& o, V&& v) {
//     v.field("num_codes", o.num_codes, "k, the number of centroids", options::at_least(1));
//     v.field("init", o.init, "how the centroids of a restart are chosen");
//   }
//   // enums name their values once, also by ADL:
//   constexpr auto enum_names(KMeansInit) {
//     return std::array{std::pair{KMeansInit::kPlusPlus, "k-means++"}, std::pair{KMeansInit::kRandom, "random"}};
//   }
//
// TORCH_ARG structs list their getters, which return a reference: v.field("epochs", o.epochs(), "...").
// A field may be: bool, any integer type (range-checked, never narrowed), float / double (finite),
// std::string, std::filesystem::path, an enum with enum_names, std::optional<T> (null),
// std::vector<T>, std::map<std::string, T>, another struct with visit_fields (a JSON sub-object
// with its own key path), or a type with an options::Codec specialization.
//
// Then, for such a struct T:
//   nlohmann::json j = lamia::options::to_json(o);          // also nlohmann::json(o)
//   lamia::options::from_json(j, o);                        // also j.get<T>(); ValueError naming the key
//   lamia::options::describe<T>();                          // [{name, type, default, doc}, ...]
// from_json keeps the current value of missing keys and rejects unknown keys (listing the known
// ones), values of the wrong type, integers that do not fit, non-finite numbers and values outside
// a field's check; the object is changed only when the whole read succeeded.
#include <lamia/core/errors.hpp>
#include <lamia/core/preview.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#if defined(__GNUG__)
#include <cxxabi.h>

#include <cstdlib>
#include <memory>
#endif

namespace lamia::options {

using json = nlohmann::json;

// ---------------------------------------------------------------------------------------------
// Checks of numeric fields: the 4th argument of v.field(...).

/// A closed or half-open interval a numeric field must lie in.
struct Range {
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  bool lo_open = false;
  bool hi_open = false;

  bool contains(double x) const {
    return (lo_open ? x > lo : x >= lo) && (hi_open ? x < hi : x <= hi);
  }
  std::string str() const {
    const bool has_lo = std::isfinite(lo), has_hi = std::isfinite(hi);
    if (has_lo && !has_hi) return fmt::format("{} {}", lo_open ? ">" : ">=", lo);
    if (!has_lo && has_hi) return fmt::format("{} {}", hi_open ? "<" : "<=", hi);
    if (!has_lo && !has_hi) return "any value";
    return fmt::format("in {}{}, {}{}", lo_open ? "(" : "[", lo, hi, hi_open ? ")" : "]");
  }
};
inline Range at_least(double lo) { return Range{lo, std::numeric_limits<double>::infinity(), false, false}; }
inline Range greater_than(double lo) { return Range{lo, std::numeric_limits<double>::infinity(), true, false}; }
inline Range between(double lo, double hi) { return Range{lo, hi, false, false}; }
/// [lo, hi)
inline Range from_to_excluded(double lo, double hi) { return Range{lo, hi, false, true}; }

// ---------------------------------------------------------------------------------------------
// Where a value is: the struct being read and the key path, for error messages.

struct Where {
  std::string root;  ///< e.g. "KMeansOptions" (may be empty)
  std::string path;  ///< e.g. "kmeans.num_codes", "attributes[2].name" (empty: the whole object)

  Where key(std::string_view k) const { return {root, path.empty() ? std::string(k) : path + "." + std::string(k)}; }
  Where index(std::size_t i) const { return {root, fmt::format("{}[{}]", path, i)}; }

  std::string prefix() const {
    if (root.empty() && path.empty()) return "options: ";
    if (path.empty()) return root + ": ";
    if (root.empty()) return fmt::format("key '{}': ", path);
    return fmt::format("{}: key '{}': ", root, path);
  }
  [[noreturn]] void fail(std::string_view expected, const json& got) const {
    // Cut at a UTF-8 boundary (a message must stay valid text for Python and the terminal).
    const std::string shown = got.is_string() ? "'" + preview(got.get_ref<const std::string&>(), 77) + "'"
                                              : preview(got.dump(), 77);
    if (got.is_string() || got.is_null() || got.is_boolean())
      throw ValueError(fmt::format("{}expected {}, got {}", prefix(), expected, shown));
    throw ValueError(fmt::format("{}expected {}, got {} {}", prefix(), expected, got.type_name(), shown));
  }
  [[noreturn]] void fail_message(std::string_view message) const {
    throw ValueError(prefix() + std::string(message));
  }
};

/// "lamia::KMeansOptions" -> "KMeansOptions" (for messages; Python passes its own class name).
template <class T>
std::string type_name() {
  std::string name = typeid(T).name();
#if defined(__GNUG__)
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> d(abi::__cxa_demangle(name.c_str(), nullptr, nullptr, &status), std::free);
  if (status == 0 && d) name = d.get();
#endif
  const auto colon = name.rfind("::");
  return colon == std::string::npos ? name : name.substr(colon + 2);
}

// ---------------------------------------------------------------------------------------------
// Detection

namespace detail {
struct ProbeVisitor {
  template <class... A>
  void field(A&&...) {}
};
template <class T, class = void>
struct has_fields : std::false_type {};
template <class T>
struct has_fields<T, std::void_t<decltype(visit_fields(std::declval<T&>(), std::declval<ProbeVisitor&>()))>>
    : std::true_type {};

template <class E, class = void>
struct has_enum_names : std::false_type {};
template <class E>
struct has_enum_names<E, std::void_t<decltype(enum_names(E{}))>> : std::true_type {};

template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};
template <class T>
struct is_vector : std::false_type {};
template <class T, class A>
struct is_vector<std::vector<T, A>> : std::true_type {};
}  // namespace detail

/// True for structs with a field list (visit_fields found by ADL).
template <class T>
inline constexpr bool is_options_v = detail::has_fields<T>::value;

/// Calls visit_fields on a const object (the visitors that only read never write through it).
template <class T, class V>
void visit(const T& o, V&& v) {
  visit_fields(const_cast<T&>(o), v);
}
template <class T, class V>
void visit(T& o, V&& v) {
  visit_fields(o, v);
}

/// The default value of T: T{} unless specialized (for structs whose constructor takes arguments).
template <class T>
struct Defaults {
  static T make() { return T{}; }
};

// ---------------------------------------------------------------------------------------------
// Codecs: one per field type. Specialize Codec<T> for another type with
//   static json write(const T&);
//   static void read(const json&, T&, const Where&);     // throws through Where::fail
//   static std::string expected();                       // "an integer", "one of 'a', 'b'", ...

template <class T, class = void>
struct Codec;

template <>
struct Codec<bool> {
  static json write(bool v) { return v; }
  static void read(const json& j, bool& out, const Where& w) {
    if (!j.is_boolean()) w.fail(expected(), j);
    out = j.get<bool>();
  }
  static std::string expected() { return "a boolean"; }
};

template <class T>
struct Codec<T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>>> {
  static json write(T v) { return v; }
  static void read(const json& j, T& out, const Where& w) {
    using L = std::numeric_limits<T>;
    if (j.is_number_unsigned()) {
      const auto v = j.get<std::uint64_t>();
      if (v > static_cast<std::uint64_t>(L::max())) w.fail(expected(), j);
      out = static_cast<T>(v);
    } else if (j.is_number_integer()) {
      const auto v = j.get<std::int64_t>();
      if constexpr (std::is_signed_v<T>) {
        if (v < static_cast<std::int64_t>(L::min()) || v > static_cast<std::int64_t>(L::max())) w.fail(expected(), j);
      } else {
        if (v < 0 || static_cast<std::uint64_t>(v) > static_cast<std::uint64_t>(L::max())) w.fail(expected(), j);
      }
      out = static_cast<T>(v);
    } else if (j.is_number_float()) {
      // 2000.0 is 2000 (hand-written configs, Python floats); 2.5, 1e300 and nan are not integers.
      const double d = j.get<double>();
      if (!std::isfinite(d) || std::floor(d) != d || std::abs(d) > 9007199254740992.0 ||
          d < static_cast<double>(L::min()) || d > static_cast<double>(L::max()))
        w.fail(expected(), j);
      out = static_cast<T>(d);
    } else {
      w.fail(expected(), j);
    }
  }
  static std::string expected() {
    using L = std::numeric_limits<T>;
    if constexpr (std::is_signed_v<T>) {
      if constexpr (sizeof(T) >= 8) return "an integer";
      return fmt::format("an integer in [{}, {}]", L::min(), L::max());
    } else {
      if constexpr (sizeof(T) >= 8) return "a non-negative integer";
      return fmt::format("an integer in [0, {}]", L::max());
    }
  }
};

template <class T>
struct Codec<T, std::enable_if_t<std::is_floating_point_v<T>>> {
  static json write(T v) { return static_cast<double>(v); }
  static void read(const json& j, T& out, const Where& w) {
    if (!j.is_number()) w.fail(expected(), j);
    const double d = j.get<double>();
    if (!std::isfinite(d) || std::abs(d) > static_cast<double>(std::numeric_limits<T>::max())) w.fail(expected(), j);
    out = static_cast<T>(d);
  }
  static std::string expected() { return "a finite number"; }
};

template <>
struct Codec<std::string> {
  static json write(const std::string& v) { return v; }
  static void read(const json& j, std::string& out, const Where& w) {
    if (!j.is_string()) w.fail(expected(), j);
    out = j.get<std::string>();
  }
  static std::string expected() { return "a string"; }
};

template <>
struct Codec<std::filesystem::path> {
  static json write(const std::filesystem::path& v) { return v.string(); }
  static void read(const json& j, std::filesystem::path& out, const Where& w) {
    if (!j.is_string()) w.fail(expected(), j);
    const auto& s = j.get_ref<const std::string&>();
    // The system calls would read such a path only up to the NUL: another file, silently.
    if (s.find('\0') != std::string::npos) w.fail_message("expected a path without a NUL character (\\u0000)");
    out = s;
  }
  static std::string expected() { return "a path (string)"; }
};

/// The names of an enum's values, from its enum_names (found by ADL).
template <class E>
std::vector<std::string> enum_value_names() {
  std::vector<std::string> out;
  for (const auto& [value, name] : enum_names(E{})) out.emplace_back(name);
  return out;
}
template <class E>
std::string enum_to_string(E e) {
  for (const auto& [value, name] : enum_names(E{}))
    if (value == e) return name;
  return std::to_string(static_cast<long long>(e));
}
/// The value named name; ValueError "what: expected one of 'a', 'b', got 'x'" otherwise.
template <class E>
E enum_from_string(std::string_view name, std::string_view what) {
  for (const auto& [value, n] : enum_names(E{}))
    if (name == n) return value;
  throw ValueError(fmt::format("{}: expected {}, got '{}'", what, Codec<E>::expected(), name));
}

template <class E>
struct Codec<E, std::enable_if_t<std::is_enum_v<E> && detail::has_enum_names<E>::value>> {
  static json write(E v) { return enum_to_string(v); }
  static void read(const json& j, E& out, const Where& w) {
    if (j.is_string()) {
      const auto s = j.get<std::string>();
      for (const auto& [value, name] : enum_names(E{})) {
        if (s == name) {
          out = value;
          return;
        }
      }
    }
    w.fail(expected(), j);
  }
  static std::string expected() {
    std::string s = "one of ";
    bool first = true;
    for (const auto& [value, name] : enum_names(E{})) {
      s += fmt::format("{}'{}'", first ? "" : ", ", name);
      first = false;
    }
    return s;
  }
};

template <class T>
struct Codec<std::optional<T>> {
  static json write(const std::optional<T>& v) { return v ? Codec<T>::write(*v) : json(nullptr); }
  static void read(const json& j, std::optional<T>& out, const Where& w) {
    if (j.is_null()) {
      out.reset();
      return;
    }
    T value = out ? *out : Defaults<T>::make();
    Codec<T>::read(j, value, w);
    out = std::move(value);
  }
  static std::string expected() { return "null or " + Codec<T>::expected(); }
};

template <class T, class A>
struct Codec<std::vector<T, A>> {
  static json write(const std::vector<T, A>& v) {
    json j = json::array();
    for (const auto& x : v) j.push_back(Codec<T>::write(x));
    return j;
  }
  static void read(const json& j, std::vector<T, A>& out, const Where& w) {
    if (!j.is_array()) w.fail(expected(), j);
    std::vector<T, A> r;
    r.reserve(j.size());
    for (std::size_t i = 0; i < j.size(); ++i) {
      T x = Defaults<T>::make();
      Codec<T>::read(j[i], x, w.index(i));
      r.push_back(std::move(x));
    }
    out = std::move(r);
  }
  static std::string expected() { return "a list of " + strip_article(Codec<T>::expected()); }
  static std::string strip_article(std::string s) {
    for (std::string_view a : {"an ", "a "})
      if (s.rfind(a, 0) == 0) return s.substr(a.size()) + "s";
    return "(" + s + ")";
  }
};

template <class T>
struct Codec<std::map<std::string, T>> {
  static json write(const std::map<std::string, T>& v) {
    json j = json::object();
    for (const auto& [k, x] : v) j[k] = Codec<T>::write(x);
    return j;
  }
  static void read(const json& j, std::map<std::string, T>& out, const Where& w) {
    if (!j.is_object()) w.fail(expected(), j);
    std::map<std::string, T> r;
    for (const auto& [k, x] : j.items()) {
      T value = Defaults<T>::make();
      Codec<T>::read(x, value, w.key(k));
      r.emplace(k, std::move(value));
    }
    out = std::move(r);
  }
  static std::string expected() { return "an object of " + Codec<T>::expected() + " values"; }
};

// ---------------------------------------------------------------------------------------------
// Visitors over a field list.

namespace detail {

template <class M>
void check_range(const M& value, const Range& range, const Where& w) {
  if constexpr (std::is_arithmetic_v<M> && !std::is_same_v<M, bool>) {
    if (!range.contains(static_cast<double>(value))) w.fail("a value " + range.str(), Codec<M>::write(value));
  } else if constexpr (is_optional<M>::value) {
    if (value) check_range(*value, range, w);
  } else if constexpr (is_vector<M>::value) {
    for (std::size_t i = 0; i < value.size(); ++i) check_range(value[i], range, w.index(i));
  }
}

struct Writer {
  json& out;
  template <class M, class... Check>
  void field(const char* name, const M& member, const char* /*doc*/, const Check&...) {
    out[name] = Codec<M>::write(member);
  }
};

struct KeyLister {
  std::vector<std::string>& names;
  template <class M, class... Check>
  void field(const char* name, const M&, const char*, const Check&...) {
    names.emplace_back(name);
  }
};

struct Reader {
  const json& in;
  const Where& where;
  template <class M, class... Check>
  void field(const char* name, M& member, const char* /*doc*/, const Check&... checks) {
    const auto it = in.find(name);
    if (it == in.end()) return;
    const Where w = where.key(name);
    Codec<M>::read(*it, member, w);
    (check_range(member, checks, w), ...);
  }
};

}  // namespace detail

/// The field names of T, in declaration order.
template <class T>
std::vector<std::string> field_names() {
  std::vector<std::string> names;
  T proto = Defaults<T>::make();
  visit(proto, detail::KeyLister{names});
  return names;
}

template <class T>
json to_json(const T& o) {
  json j = json::object();
  visit(o, detail::Writer{j});
  return j;
}

/// Reads j into o (see the top of this file); where names the object in messages.
template <class T>
void from_json(const json& j, T& o, const Where& where) {
  if (!j.is_object()) where.fail("an object", j);
  const auto known = field_names<T>();
  for (const auto& [key, value] : j.items()) {
    bool found = false;
    for (const auto& k : known) found = found || k == key;
    if (!found) {
      const Where w = where.key(key);
      throw ValueError(fmt::format("{}{}unknown key '{}' (known keys{}: {})", w.root, w.root.empty() ? "" : ": ",
                                   w.path, where.path.empty() ? "" : " of '" + where.path + "'",
                                   fmt::join(known, ", ")));
    }
  }
  T r = o;
  visit(r, detail::Reader{j, where});
  o = std::move(r);
}
template <class T>
void from_json(const json& j, T& o) {
  from_json(j, o, Where{type_name<T>(), ""});
}
template <class T>
T from_json(const json& j) {
  T o = Defaults<T>::make();
  from_json(j, o);
  return o;
}

/// Nested options structs: a JSON sub-object with its own key path.
template <class T>
struct Codec<T, std::enable_if_t<is_options_v<T>>> {
  static json write(const T& v) { return options::to_json(v); }
  static void read(const json& j, T& out, const Where& w) { options::from_json(j, out, w); }
  static std::string expected() { return "an object (" + type_name<T>() + ")"; }
};

/// Sets one field from JSON, with the field's checks; ValueError for an unknown name.
/// Returns false when T has no field of that name (nothing changed).
namespace detail {
struct OneField {
  std::string_view want;
  const json& value;
  const Where& where;
  bool& found;
  template <class M, class... Check>
  void field(const char* name, M& member, const char*, const Check&... checks) {
    if (found || want != name) return;
    found = true;
    M tmp = member;
    const Where w = where.key(name);
    Codec<M>::read(value, tmp, w);
    (check_range(tmp, checks, w), ...);
    member = std::move(tmp);
  }
};
struct Rows {
  json& rows;
  template <class M, class... Check>
  void field(const char* name, const M& member, const char* doc, const Check&... checks) {
    json row{{"name", name}, {"type", Codec<M>::expected()}, {"default", Codec<M>::write(member)}, {"doc", doc}};
    ((row["check"] = checks.str()), ...);
    if constexpr (std::is_enum_v<M>) row["values"] = enum_value_names<M>();
    rows.push_back(std::move(row));
  }
};
}  // namespace detail

/// Sets one field from JSON, with the field's checks (ValueError naming it when the value does
/// not fit; the field keeps its value then). Returns false when T has no field of that name.
template <class T>
bool read_field(T& o, std::string_view name, const json& value, const Where& where) {
  bool found = false;
  visit(o, detail::OneField{name, value, where, found});
  return found;
}

/// One row per field: name, type (what JSON accepts), default, doc, and the check when there is one.
template <class T>
json describe(const T& defaults = Defaults<T>::make()) {
  json rows = json::array();
  visit(defaults, detail::Rows{rows});
  return rows;
}

/// Field-by-field equality through the JSON form (what Python's __eq__ uses).
template <class T>
bool equal(const T& a, const T& b) {
  return to_json(a) == to_json(b);
}

}  // namespace lamia::options

namespace lamia {
// nlohmann::json integration: json(o) and j.get<T>() for every struct with a field list.
template <class T, std::enable_if_t<options::is_options_v<T>, int> = 0>
void to_json(nlohmann::json& j, const T& o) {
  j = options::to_json(o);
}
template <class T, std::enable_if_t<options::is_options_v<T>, int> = 0>
void from_json(const nlohmann::json& j, T& o) {
  options::from_json(j, o);
}
}  // namespace lamia
