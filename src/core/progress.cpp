#include <lamia/core/errors.hpp>
#include <lamia/core/progress.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <string_view>

#include <sys/ioctl.h>
#include <unistd.h>

namespace lamia {
namespace {

// The descriptor behind a standard stream, or -1.
int standard_fd(const std::ostream& os) {
  if (&os == &std::cout) return STDOUT_FILENO;
  if (&os == &std::cerr || &os == &std::clog) return STDERR_FILENO;
  return -1;
}

// "4,100" from 4100.
std::string with_thousands(long long v) {
  std::string digits = std::to_string(v < 0 ? -v : v);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return v < 0 ? "-" + out : out;
}

}  // namespace

bool stream_is_terminal(const std::ostream& os) {
  const int fd = standard_fd(os);
  return fd >= 0 && ::isatty(fd) == 1;
}

int terminal_columns(const std::ostream& os) {
  const int fd = standard_fd(os);
  struct winsize ws {};
  if (fd >= 0 && ::ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  if (const char* c = std::getenv("COLUMNS")) {
    char* end = nullptr;
    const long v = std::strtol(c, &end, 10);
    if (end != c && *end == '\0' && v > 0 && v < 10000) return int(v);
  }
  return 80;
}

ProgressMode resolve_progress_mode(const std::ostream& os, ProgressMode requested) {
  if (requested != ProgressMode::automatic) return requested;
  if (standard_fd(os) < 0) return ProgressMode::plain;
  if (const char* env = std::getenv("LAMIA_PROGRESS"); env && *env) {
    const std::string_view v(env);
    if (v == "plain") return ProgressMode::plain;
    if (v == "terminal") return ProgressMode::terminal;
    if (v != "auto") {
      throw ValueError(fmt::format("environment variable LAMIA_PROGRESS: expected 'auto', 'plain' or 'terminal', got '{}'", v));
    }
  }
  if (const char* term = std::getenv("TERM"); term && std::string_view(term) == "dumb") return ProgressMode::plain;
  return stream_is_terminal(os) ? ProgressMode::terminal : ProgressMode::plain;
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  const auto s = static_cast<long long>(std::floor(seconds));
  const long long h = s / 3600, m = (s / 60) % 60, sec = s % 60;
  if (h > 0) return fmt::format("{}:{:02}:{:02}", h, m, sec);
  return fmt::format("{}:{:02}", m, sec);
}

std::string format_rate(double per_second, const std::string& unit) {
  if (!std::isfinite(per_second) || !(per_second > 0)) return fmt::format("? {}/s", unit);
  std::string number;
  if (per_second < 10) {
    number = fmt::format("{:.2f}", per_second);
  } else if (per_second < 100) {
    number = fmt::format("{:.1f}", per_second);
  } else if (per_second < 999999.5) {
    number = with_thousands(std::llround(per_second));
  } else {
    number = fmt::format("{:.2f}M", per_second / 1e6);
  }
  return fmt::format("{} {}/s", number, unit);
}

std::optional<double> eta_seconds(std::int64_t done_in_run, std::int64_t remaining, double elapsed) {
  if (done_in_run <= 0 || !(elapsed > 0) || !std::isfinite(elapsed) || remaining < 0) return std::nullopt;
  return double(remaining) * elapsed / double(done_in_run);
}

std::string progress_text(const ProgressState& s, int width) {
  const bool known = s.total > 0;
  const std::string head = s.label.empty() ? "" : s.label + " ";
  const std::string counts = known ? fmt::format("{}/{}", s.done, s.total) : fmt::format("{} {}", s.done, s.unit);
  // Integer arithmetic: 120 of 400 is 30% and 9 of 30 cells exactly (0.3 * 30 in doubles is 8.999...).
  const std::int64_t clamped = known ? std::clamp<std::int64_t>(s.done, 0, s.total) : 0;
  const std::string percent = known ? fmt::format(" {:3}%", clamped * 100 / s.total) : "";
  const std::int64_t done_in_run = s.done - s.initial;
  const std::string step_rate = format_rate(s.elapsed > 0 ? double(done_in_run) / s.elapsed : 0.0, s.unit);
  const std::string item_rate =
      s.items_unit.empty() ? "" : ", " + format_rate(s.elapsed > 0 ? double(s.items) / s.elapsed : 0.0, s.items_unit);
  std::string times = format_duration(s.elapsed) + " elapsed";
  if (known) {
    const auto eta = eta_seconds(done_in_run, std::max<std::int64_t>(0, s.total - s.done), s.elapsed);
    times += ", ETA " + (eta ? format_duration(*eta) : std::string("--:--"));
  }
  const auto limit = std::size_t(std::max(1, width - 1));
  // The line with a bar of as many cells as fit (10 to 30), or nullopt when fewer than 10 fit.
  auto with_bar = [&](const std::string& tail) -> std::optional<std::string> {
    const std::size_t text = head.size() + counts.size() + tail.size() + 3;  // " [" and "]"
    if (!known || text + 10 > limit) return std::nullopt;
    const auto cells = std::min<std::size_t>(30, limit - text);
    const auto filled = std::size_t(clamped * std::int64_t(cells) / s.total);
    return head + counts + " [" + std::string(filled, '#') + std::string(cells - filled, '.') + "]" + tail;
  };
  // Narrower and narrower: the bar shrinks to 10 cells; then the second rate goes to keep the bar;
  // then the bar goes instead (and the second rate too when even that is too long); then it is cut.
  const std::string full = percent + " | " + step_rate + item_rate + " | " + times;
  const std::string short_tail = percent + " | " + step_rate + " | " + times;
  if (auto line = with_bar(full)) return *line;
  if (auto line = with_bar(short_tail)) return *line;
  std::string line = head + counts + full;
  if (line.size() > limit) line = head + counts + short_tail;
  if (line.size() > limit) line.resize(limit);
  return line;
}

ProgressBar::ProgressBar(std::ostream& os, std::int64_t total, ProgressOptions options)
    : os_(os), options_(std::move(options)) {
  terminal_ = resolve_progress_mode(os_, options_.mode) == ProgressMode::terminal;
  state_.label = options_.label;
  state_.unit = options_.unit;
  state_.items_unit = options_.items_unit;
  state_.total = total;
  state_.initial = options_.initial;
  state_.done = options_.initial;
  start_ = last_draw_ = now();
}

ProgressBar::~ProgressBar() {
  try {
    finish();
  } catch (...) {  // a stream that throws: nothing more to do here
  }
}

double ProgressBar::now() const {
  if (options_.clock) return options_.clock();
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

ProgressState ProgressBar::state() const {
  ProgressState s = state_;
  s.elapsed = now() - start_;
  return s;
}

void ProgressBar::draw() {
  const double t = now();
  ProgressState s = state_;
  s.elapsed = t - start_;
  const int width = options_.width > 0 ? options_.width : terminal_columns(os_);
  os_ << '\r' << progress_text(s, width) << "\x1b[K";
  os_.flush();
  drawn_ = true;
  last_draw_ = t;
}

void ProgressBar::erase() {
  if (!drawn_) return;
  os_ << "\r\x1b[K";
  drawn_ = false;
}

void ProgressBar::update(std::int64_t done, std::int64_t items) {
  state_.done = done;
  state_.items += items;
  if (!terminal_ || finished_) return;
  const bool last = state_.total > 0 && done >= state_.total;
  if (!drawn_ || last || now() - last_draw_ >= options_.min_interval) draw();
}

void ProgressBar::write_line(const std::string& line) {
  const bool redraw = terminal_ && !finished_ && drawn_;
  if (terminal_) erase();
  os_ << line << '\n';
  if (redraw) {
    draw();
  } else {
    os_.flush();
  }
}

void ProgressBar::finish() {
  if (finished_) return;
  finished_ = true;
  if (terminal_ && drawn_) {
    erase();
    os_.flush();
  }
}

}  // namespace lamia
