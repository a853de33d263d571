#pragma once
// Progress of a long loop (training): on a terminal one line that is redrawn in place,
//
//   recommender 120/400 [#####...........]  30% | 12.5 steps/s, 4,100 tok/s | 0:09 elapsed, ETA 0:22
//
// and the caller's own lines (loss, validation) printed above it; anywhere else (a file, a pipe,
// a notebook, a string stream) only the caller's lines, byte for byte as written, no bar.
//
//   lamia::ProgressOptions po;
//   po.label = "training";
//   po.items_unit = "tok";
//   lamia::ProgressBar bar(std::cerr, /*total=*/400, po);
//   for (...) { ...; bar.update(step, tokens_of_this_step); if (...) bar.write_line("loss ..."); }
//   bar.finish();   // clears the bar (also done by the destructor)
//
// Rates are averages since the bar started (steps done in this run / elapsed seconds), and the
// ETA is (total - done) / that rate. No torch; the clock can be injected (tests).
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>

namespace lamia {

enum class ProgressMode {
  /// terminal when the stream is one (see resolve_progress_mode), else plain.
  automatic,
  /// The updating line (carriage return + "erase to end of line", ANSI).
  terminal,
  /// No bar: only write_line's lines.
  plain,
};

/// Whether os is std::cout (fd 1) or std::cerr / std::clog (fd 2) and that descriptor is a
/// terminal (isatty). Any other stream is not a terminal.
bool stream_is_terminal(const std::ostream& os);

/// Columns of the terminal behind os (ioctl TIOCGWINSZ), else $COLUMNS, else 80.
int terminal_columns(const std::ostream& os);

/// What `requested` means for os: terminal and plain are kept; automatic is plain for any stream
/// but the standard ones; for those the environment variable LAMIA_PROGRESS decides when set
/// ("plain", "terminal" or "auto"; anything else is a ValueError naming the variable and value),
/// then TERM=dumb is plain, else stream_is_terminal(os).
ProgressMode resolve_progress_mode(const std::ostream& os, ProgressMode requested = ProgressMode::automatic);

/// "0:07", "1:05", "59:59", "1:00:00", "26:03:04" (seconds, rounded down); "--:--" when negative,
/// NaN or infinite.
std::string format_duration(double seconds);

/// "0.25 steps/s", "12.5 steps/s", "843 tok/s", "4,100 tok/s", "1.23M tok/s" (3 significant digits
/// below 1,000; thousands separated up to 1e6, then M); "? unit/s" when not a positive finite number.
std::string format_rate(double per_second, const std::string& unit);

/// Seconds left at a constant rate: remaining * elapsed / done_in_run. nullopt when nothing was
/// done in this run, elapsed is not positive, or remaining is negative.
std::optional<double> eta_seconds(std::int64_t done_in_run, std::int64_t remaining, double elapsed);

/// Everything the bar line shows.
struct ProgressState {
  std::string label;
  std::int64_t done = 0;
  std::int64_t total = 0;    ///< 0: unknown (no bar, percentage or ETA)
  std::int64_t initial = 0;  ///< done when the bar started (a resumed run): rates count from here
  double elapsed = 0.0;      ///< seconds since the bar started
  std::string unit = "steps";
  std::int64_t items = 0;    ///< a second count since the bar started (tokens), for a second rate
  std::string items_unit;    ///< its unit ("tok"); empty: not shown
};

/// The bar line (no carriage return, no newline), at most width - 1 characters, so that it never
/// wraps: the bar [###...] shrinks to 10 cells; then the second rate is left out to keep the bar;
/// then the bar is left out instead (and the second rate when still too long); then the text is cut.
std::string progress_text(const ProgressState& state, int width = 80);

struct ProgressOptions {
  std::string label;
  std::string unit = "steps";
  std::string items_unit;
  ProgressMode mode = ProgressMode::automatic;
  /// Done when the bar starts (a resumed loop); rates and the ETA count from here.
  std::int64_t initial = 0;
  /// Least seconds between two redraws on a terminal (the last step is always drawn).
  double min_interval = 0.1;
  /// Line width; 0: terminal_columns(os).
  int width = 0;
  /// Monotonic seconds; empty: std::chrono::steady_clock.
  std::function<double()> clock;
};

class ProgressBar {
 public:
  /// mode is resolved once, here (resolve_progress_mode). Nothing is written until update().
  ProgressBar(std::ostream& os, std::int64_t total, ProgressOptions options = {});
  /// finish(); never throws.
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  /// Whether the bar is drawn (the resolved mode is terminal).
  bool terminal() const noexcept { return terminal_; }
  /// Changes the total (e.g. at each epoch, when batches per epoch vary); 0: unknown.
  void set_total(std::int64_t total) noexcept { state_.total = total; }
  /// done (absolute, not a delta) and items processed since the last update. On a terminal the
  /// line is redrawn when min_interval has passed since the last redraw or done reached total.
  void update(std::int64_t done, std::int64_t items = 0);
  /// One line (no newline) above the bar: on a terminal the bar is erased, the line written and the
  /// bar redrawn; in plain mode exactly `line` and '\n', then a flush.
  void write_line(const std::string& line);
  /// Erases the bar on a terminal (the next output starts on a clean line); then does nothing.
  void finish();
  /// The state the bar would show now (elapsed read from the clock).
  ProgressState state() const;

 private:
  double now() const;
  void draw();
  void erase();

  std::ostream& os_;
  ProgressOptions options_;
  ProgressState state_;
  bool terminal_ = false;
  bool drawn_ = false;     // the bar is on the screen now
  bool finished_ = false;
  double start_ = 0.0;
  double last_draw_ = 0.0;
  int width_ = 80;
};

}  // namespace lamia
