// The progress bar of long loops: durations, rates and the ETA worked out by hand, the bar line at
// several widths, terminal mode (redraws throttled by an injected clock, lines written above the
// bar) against plain mode (the lines and nothing else), and how the mode is chosen.
#include <catch2/catch.hpp>

#include "../env_guard.hpp"

#include <lamia/core/errors.hpp>
#include <lamia/core/progress.hpp>

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <optional>
#include <sstream>
#include <string>

using namespace lamia;

namespace {

using lamia::testing::EnvGuard;

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + what.size())) ++n;
  return n;
}

ProgressState example_state() {
  ProgressState s;
  s.label = "toy";
  s.done = 120;
  s.total = 400;
  s.elapsed = 9.6;  // 120 steps in 9.6 s: 12.5 steps/s; 39,360 tokens: 4,100 tok/s
  s.items = 39360;
  s.items_unit = "tok";
  return s;
}

}  // namespace

TEST_CASE("progress: durations", "[core][progress]") {
  CHECK(format_duration(0) == "0:00");
  CHECK(format_duration(7.9) == "0:07");
  CHECK(format_duration(65) == "1:05");
  CHECK(format_duration(3599.99) == "59:59");
  CHECK(format_duration(3600) == "1:00:00");
  CHECK(format_duration(26 * 3600 + 3 * 60 + 4) == "26:03:04");
  CHECK(format_duration(-1) == "--:--");
  CHECK(format_duration(std::numeric_limits<double>::infinity()) == "--:--");
  CHECK(format_duration(std::numeric_limits<double>::quiet_NaN()) == "--:--");
}

TEST_CASE("progress: rates", "[core][progress]") {
  CHECK(format_rate(0.25, "steps") == "0.25 steps/s");
  CHECK(format_rate(9.994, "steps") == "9.99 steps/s");
  CHECK(format_rate(12.5, "steps") == "12.5 steps/s");
  CHECK(format_rate(843.4, "tok") == "843 tok/s");
  CHECK(format_rate(4100, "tok") == "4,100 tok/s");
  CHECK(format_rate(123456.7, "tok") == "123,457 tok/s");
  CHECK(format_rate(1234567, "tok") == "1.23M tok/s");
  CHECK(format_rate(0, "steps") == "? steps/s");
  CHECK(format_rate(-3, "steps") == "? steps/s");
  CHECK(format_rate(std::numeric_limits<double>::infinity(), "steps") == "? steps/s");
}

TEST_CASE("progress: the ETA is what is left at the rate of this run", "[core][progress]") {
  // 100 steps in 20 s (5 steps/s); 300 left: 60 s.
  REQUIRE(eta_seconds(100, 300, 20.0).has_value());
  CHECK(*eta_seconds(100, 300, 20.0) == Approx(60.0));
  CHECK(*eta_seconds(3, 0, 1.5) == 0.0);
  CHECK_FALSE(eta_seconds(0, 300, 20.0).has_value());  // nothing done yet: no rate
  CHECK_FALSE(eta_seconds(10, 300, 0.0).has_value());
  CHECK_FALSE(eta_seconds(10, -1, 1.0).has_value());

  // A resumed run: 50 steps were done before; 30 more in 6 s (5 steps/s), 120 left of 200: 24 s.
  ProgressState s;
  s.done = 80;
  s.initial = 50;
  s.total = 200;
  s.elapsed = 6.0;
  const auto text = progress_text(s, 200);
  INFO(text);
  CHECK(text.find("80/200") != std::string::npos);
  CHECK(text.find("5.00 steps/s") != std::string::npos);  // not 80 / 6
  CHECK(text.find("0:06 elapsed, ETA 0:24") != std::string::npos);
}

TEST_CASE("progress: the bar line", "[core][progress]") {
  const auto s = example_state();
  // 120 of 400: 30%, 9 of 30 cells; ETA 280 steps at 12.5 steps/s = 22.4 s.
  CHECK(progress_text(s, 200) ==
        "toy 120/400 [#########.....................]  30% | 12.5 steps/s, 4,100 tok/s | 0:09 elapsed, ETA 0:22");

  ProgressState unknown;
  unknown.done = 7;
  unknown.elapsed = 2.0;
  CHECK(progress_text(unknown, 200) == "7 steps | 3.50 steps/s | 0:02 elapsed");

  ProgressState start = s;
  start.done = 0;
  start.items = 0;
  start.elapsed = 0.0;
  CHECK(progress_text(start, 200) ==
        "toy 0/400 [..............................]   0% | ? steps/s, ? tok/s | 0:00 elapsed, ETA --:--");

  ProgressState over = s;
  over.done = 450;  // a total that was an estimate: the bar stays full
  const auto full_bar = progress_text(over, 200);
  CHECK(full_bar.find("[##############################] 100%") != std::string::npos);

  // Never wider than width - 1 (a line that wraps cannot be redrawn in place): the bar shrinks to
  // 10 cells, then the tokens' rate goes to keep it, then the bar goes, then the text is cut.
  const std::string head = "toy 120/400";
  const std::string full = "  30% | 12.5 steps/s, 4,100 tok/s | 0:09 elapsed, ETA 0:22";
  const std::string short_tail = "  30% | 12.5 steps/s | 0:09 elapsed, ETA 0:22";
  for (int width = 1; width <= 200; ++width) {
    const auto limit = std::size_t(std::max(1, width - 1));
    auto line = progress_text(s, width);
    INFO("width " << width << ": " << line);
    REQUIRE(line.size() <= limit);
    const auto open = line.find(" [");
    if (open != std::string::npos) {
      const auto close = line.find(']');
      const auto cells = close - open - 2;
      CHECK(cells >= 10);
      CHECK(cells <= 30);
      CHECK(std::size_t(std::count(line.begin(), line.end(), '#')) == cells * 120 / 400);
      CHECK((cells == 30 || line.size() == limit));  // as wide as fits
      line.erase(open, close + 1 - open);
    }
    const bool bar_with_both = head.size() + full.size() + 13 <= limit;
    const bool bar_with_one = head.size() + short_tail.size() + 13 <= limit;
    if (bar_with_both) {
      CHECK(open != std::string::npos);
      CHECK(line == head + full);
    } else if (bar_with_one) {
      CHECK(open != std::string::npos);
      CHECK(line == head + short_tail);
    } else if (head.size() + full.size() <= limit) {
      CHECK(line == head + full);
    } else if (head.size() + short_tail.size() <= limit) {
      CHECK(line == head + short_tail);
    } else {
      CHECK(line == (head + short_tail).substr(0, limit));
    }
  }
}

TEST_CASE("progress: terminal mode redraws one line, throttled, with lines above it", "[core][progress]") {
  double t = 0.0;
  ProgressOptions po;
  po.label = "t";
  po.mode = ProgressMode::terminal;
  po.min_interval = 1.0;
  po.width = 200;
  po.clock = [&] { return t; };
  std::ostringstream os;
  std::string expected;
  auto line_at = [&](std::int64_t done, double elapsed) {
    ProgressState s;
    s.label = "t";
    s.done = done;
    s.total = 10;
    s.elapsed = elapsed;
    return "\r" + progress_text(s, 200) + "\x1b[K";
  };
  {
    ProgressBar bar(os, 10, po);
    CHECK(bar.terminal());
    CHECK(os.str().empty());  // nothing before the first update
    t = 0.5;
    bar.update(1);  // first update: drawn
    expected += line_at(1, 0.5);
    t = 0.8;
    bar.update(2);  // 0.3 s after the last draw: not drawn
    t = 1.6;
    bar.update(3);  // 1.1 s after: drawn
    expected += line_at(3, 1.6);
    CHECK(os.str() == expected);
    t = 1.7;
    bar.write_line("loss 0.5");  // erase, the line, the bar again
    expected += "\r\x1b[Kloss 0.5\n" + line_at(3, 1.7);
    t = 1.75;
    bar.update(10);  // the last step is always drawn
    expected += line_at(10, 1.75);
    CHECK(bar.state().done == 10);
    bar.finish();
    expected += "\r\x1b[K";
    bar.finish();  // once
    bar.write_line("done");  // after finish: a plain line
    expected += "done\n";
  }  // the destructor adds nothing after finish
  CHECK(os.str() == expected);
  // The first drawn line, spelled out: 1 step in 0.5 s, 9 left at 2 steps/s.
  CHECK(line_at(1, 0.5) == "\rt 1/10 [###...........................]  10% | 2.00 steps/s | 0:00 elapsed, ETA 0:04\x1b[K");
}

TEST_CASE("progress: plain mode writes the lines and nothing else", "[core][progress]") {
  double t = 0.0;
  ProgressOptions po;
  po.label = "t";
  po.mode = ProgressMode::plain;
  po.clock = [&] { return t; };
  std::ostringstream os;
  {
    ProgressBar bar(os, 10, po);
    CHECK_FALSE(bar.terminal());
    for (int i = 1; i <= 10; ++i) {
      t += 2.0;
      bar.update(i, 100);
      if (i % 5 == 0) bar.write_line("line " + std::to_string(i));
    }
    CHECK(bar.state().items == 1000);
    bar.finish();
  }
  CHECK(os.str() == "line 5\nline 10\n");
}

TEST_CASE("progress: a bar destroyed while drawn (an exception) leaves a clean line", "[core][progress]") {
  std::ostringstream os;
  ProgressOptions po;
  po.mode = ProgressMode::terminal;
  po.width = 80;
  {
    ProgressBar bar(os, 5, po);
    bar.update(1);
  }
  const auto text = os.str();
  INFO(text);
  REQUIRE(text.size() >= 4);
  CHECK(text.compare(text.size() - 4, 4, "\r\x1b[K") == 0);
}

TEST_CASE("progress: how the mode is chosen", "[core][progress]") {
  std::ostringstream os;
  {
    // A stream that is not a standard one is never a terminal, whatever the environment says.
    EnvGuard env("LAMIA_PROGRESS", "terminal");
    CHECK_FALSE(stream_is_terminal(os));
    CHECK(resolve_progress_mode(os) == ProgressMode::plain);
    CHECK(resolve_progress_mode(os, ProgressMode::terminal) == ProgressMode::terminal);
    CHECK(resolve_progress_mode(std::cerr) == ProgressMode::terminal);
    CHECK(resolve_progress_mode(std::cerr, ProgressMode::plain) == ProgressMode::plain);
  }
  {
    EnvGuard env("LAMIA_PROGRESS", "plain");
    CHECK(resolve_progress_mode(std::cerr) == ProgressMode::plain);
    CHECK(resolve_progress_mode(std::cout) == ProgressMode::plain);
  }
  {
    EnvGuard env("LAMIA_PROGRESS", "bars");
    CHECK_THROWS_AS(resolve_progress_mode(std::cerr), ValueError);
    CHECK_THROWS_WITH(resolve_progress_mode(std::cerr), Catch::Contains("LAMIA_PROGRESS") && Catch::Contains("'bars'"));
    CHECK(resolve_progress_mode(os) == ProgressMode::plain);  // not read for other streams
  }
  {
    EnvGuard env("LAMIA_PROGRESS", nullptr);
    EnvGuard term("TERM", "dumb");
    CHECK(resolve_progress_mode(std::cerr) == ProgressMode::plain);
  }
  {
    EnvGuard env("LAMIA_PROGRESS", "auto");
    EnvGuard term("TERM", "xterm");
    const bool tty = ::isatty(STDERR_FILENO) == 1;  // under ctest: a pipe
    CHECK(stream_is_terminal(std::cerr) == tty);
    CHECK(resolve_progress_mode(std::cerr) == (tty ? ProgressMode::terminal : ProgressMode::plain));
  }
  {
    EnvGuard columns("COLUMNS", "123");
    CHECK(terminal_columns(os) == 123);  // no terminal behind os: $COLUMNS
  }
  {
    EnvGuard columns("COLUMNS", "wide");
    CHECK(terminal_columns(os) == 80);
  }
}
