//! The collision map as SVG (issue 25): time since the kill across, the
//! address ranges up (highest address at the top), one line per walker
//! through its per-VMA steps, and each PTE-lock wait a circle where and
//! when it began, its area proportional to the wait, filled by its holder
//! and with a bar as long as the wait. Every run-file string is escaped
//! ([`crate::sanitize::xml`]); nothing else varies but numbers.

use std::fmt::Write;

use crate::duration;
use crate::model::{Context, Run};
use crate::sanitize;

use super::collision_map::{CollisionMap, StepMark, WalkerLine, direction};
use super::model::Holder;

const WIDTH: f64 = 1200.0;
const HEIGHT: f64 = 640.0;
const LEFT: f64 = 130.0;
const RIGHT: f64 = 300.0;
const TOP: f64 = 70.0;
const BOTTOM: f64 = 60.0;

/// One colour per tracked context, in [`Context::ALL`]'s order.
const WALKER_COLOURS: [&str; 3] = ["#c0392b", "#2471a3", "#1e8449"];
/// Fill of a wait whose holder is a task reaper does not track.
const OTHER_HOLDER: &str = "#e67e22";
/// Fill of a wait whose holder is not known.
const UNKNOWN_HOLDER: &str = "#9e9e9e";

/// The file name of episode `n`'s map.
pub fn file_name(episode: usize) -> String {
    format!("collision_map_episode_{episode}.svg")
}

/// A context's colour.
fn colour(context: Context) -> &'static str {
    let i = Context::ALL.iter().position(|&c| c == context).unwrap_or(0);
    WALKER_COLOURS[i % WALKER_COLOURS.len()]
}

/// A holder's fill.
fn holder_colour(holder: &Holder) -> &'static str {
    match holder {
        Holder::Context(context) | Holder::OtherThread(context) => colour(*context),
        Holder::Other(_) => OTHER_HOLDER,
        Holder::Unknown => UNKNOWN_HOLDER,
    }
}

/// Where things go on the page.
struct Scale {
    end_ns: f64,
    rows: usize,
}

impl Scale {
    fn x(&self, t_ns: i64) -> f64 {
        let plot = WIDTH - LEFT - RIGHT;
        LEFT + plot * (t_ns.max(0) as f64 / self.end_ns).min(1.0)
    }

    /// Row 0 (lowest address) at the bottom.
    fn y(&self, row: usize) -> f64 {
        let plot = HEIGHT - TOP - BOTTOM;
        TOP + plot * (1.0 - (row as f64 + 0.5) / self.rows as f64)
    }
}

/// Renders one episode's map.
pub fn render(run: &Run, map: &CollisionMap) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"Verdana, sans-serif\" font-size=\"12\">"
    );
    body(run, map, &mut out);
    out.push_str("</svg>\n");
    out
}

/// Two maps next to each other (`diff -o`): each side's own scales, under
/// its label ("A: 6.1 forward"). Labels may come from run files: escaped.
pub fn side_by_side(sides: [(&str, &Run, &CollisionMap); 2]) -> String {
    const LABEL: f64 = 30.0;
    let (width, height) = (2.0 * WIDTH, HEIGHT + LABEL);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" font-family=\"Verdana, sans-serif\" font-size=\"12\">"
    );
    for (i, (label, run, map)) in sides.into_iter().enumerate() {
        let x = i as f64 * WIDTH;
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"20\" text-anchor=\"middle\" font-size=\"16\" \
             font-weight=\"bold\">{}</text>",
            x + WIDTH / 2.0,
            text(label)
        );
        let _ = writeln!(
            out,
            "<svg x=\"{x}\" y=\"{LABEL}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
             viewBox=\"0 0 {WIDTH} {HEIGHT}\">"
        );
        body(run, map, &mut out);
        out.push_str("</svg>\n");
    }
    out.push_str("</svg>\n");
    out
}

/// Everything inside one map's `<svg>`.
fn body(run: &Run, map: &CollisionMap, out: &mut String) {
    let scale = Scale {
        end_ns: map.end_ns.max(1) as f64,
        rows: map.rows.len().max(1),
    };
    let _ = writeln!(
        out,
        "<rect x=\"0\" y=\"0\" width=\"{WIDTH}\" height=\"{HEIGHT}\" fill=\"#ffffff\"/>"
    );
    header(run, map, out);
    axes(map, &scale, out);
    for line in &map.walkers {
        walker(line, &map.function, &scale, out);
    }
    waits(map, &scale, out);
    legend(map, out);
}

/// Title and the line under it.
fn header(run: &Run, map: &CollisionMap, out: &mut String) {
    let title = format!(
        "reaper: collision map, episode {} — {} {} — {}",
        map.episode, run.host.kernel_release, run.host.arch, run.recording.scenario.description
    );
    let _ = writeln!(
        out,
        "<text x=\"{}\" y=\"24\" text-anchor=\"middle\" font-size=\"16\">{}</text>",
        WIDTH / 2.0,
        text(&title)
    );
    let sub = format!(
        "lines: each walker's calls of {} (one per address range, thick while inside); \
         circles: PTE-lock waits where the waiter was walking, area ∝ wait, filled by holder",
        map.function
    );
    let _ = writeln!(
        out,
        "<text x=\"{}\" y=\"44\" text-anchor=\"middle\" font-size=\"11\" fill=\"#555555\">{}</text>",
        WIDTH / 2.0,
        text(&sub)
    );
}

/// Run-file text made inert for SVG: control characters made visible,
/// then markup characters made entities.
fn text(s: &str) -> String {
    sanitize::xml(&sanitize::escape(s))
}

/// The plot's frame, time ticks and address labels.
fn axes(map: &CollisionMap, scale: &Scale, out: &mut String) {
    let (x0, x1) = (LEFT, WIDTH - RIGHT);
    let (y0, y1) = (TOP, HEIGHT - BOTTOM);
    let _ = writeln!(
        out,
        "<rect x=\"{x0}\" y=\"{y0}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#888888\"/>",
        x1 - x0,
        y1 - y0
    );
    let step = tick_step(scale.end_ns);
    let mut t = 0.0;
    while t <= scale.end_ns {
        let x = scale.x(t as i64);
        let label = ms_label(t as i64);
        let _ = writeln!(
            out,
            "<line x1=\"{x:.1}\" y1=\"{y1}\" x2=\"{x:.1}\" y2=\"{}\" stroke=\"#888888\"/>\
             <text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{label}</text>",
            y1 + 5.0,
            y1 + 19.0
        );
        t += step;
    }
    let _ = writeln!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">time since the kill</text>",
        (x0 + x1) / 2.0,
        HEIGHT - 12.0
    );
    let labels = 8.min(map.rows.len());
    for i in 0..labels {
        let row = if labels == 1 {
            0
        } else {
            i * (map.rows.len() - 1) / (labels - 1)
        };
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"10\">{:#x}</text>",
            x0 - 6.0,
            scale.y(row) + 3.0,
            map.rows[row]
        );
    }
    let _ = writeln!(
        out,
        "<text x=\"16\" y=\"{:.1}\" transform=\"rotate(-90 16 {:.1})\" text-anchor=\"middle\">\
         address ranges ({} rows, by start address; highest at the top)</text>",
        (y0 + y1) / 2.0,
        (y0 + y1) / 2.0,
        map.rows.len()
    );
}

/// `ns` as "12.3 ms", to the precision the tables use for its size.
fn ms_label(ns: i64) -> String {
    format!("{} ms", duration::ms_for_size(ns as f64 / 1e6))
}

/// A round step for about eight time ticks.
fn tick_step(end_ns: f64) -> f64 {
    let raw = end_ns / 8.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    step.max(1.0)
}

/// One walker: a thin line through its steps, a thick one inside each.
fn walker(line: &WalkerLine, function: &str, scale: &Scale, out: &mut String) {
    let c = colour(line.context);
    let points: Vec<String> = line
        .steps
        .iter()
        .flat_map(|s| {
            let y = scale.y(s.row);
            let exit = s.exit_ns.unwrap_or(s.enter_ns);
            [
                format!("{:.1},{y:.1}", scale.x(s.enter_ns)),
                format!("{:.1},{y:.1}", scale.x(exit)),
            ]
        })
        .collect();
    let _ = writeln!(
        out,
        "<g><title>{}: {} steps</title><polyline points=\"{}\" fill=\"none\" stroke=\"{c}\" \
         stroke-width=\"1\" stroke-opacity=\"0.7\"/>",
        line.context.label(),
        line.steps.len(),
        points.join(" ")
    );
    for s in &line.steps {
        step(s, line.context, function, scale, c, out);
    }
    out.push_str("</g>\n");
}

fn step(s: &StepMark, context: Context, function: &str, scale: &Scale, c: &str, out: &mut String) {
    let y = scale.y(s.row);
    let exit = s
        .exit_ns
        .map_or("not seen".to_owned(), |e| ms_label(e.max(0)));
    let _ = writeln!(
        out,
        "<line x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"{c}\" \
         stroke-width=\"4\" stroke-linecap=\"round\"><title>{}: {} {:#x}-{:#x}, {} → {}</title></line>",
        scale.x(s.enter_ns),
        scale.x(s.exit_ns.unwrap_or(s.enter_ns)),
        context.label(),
        text(function),
        s.range_start,
        s.range_end,
        ms_label(s.enter_ns.max(0)),
        exit
    );
}

/// The waits, longest first so short ones stay visible on top.
fn waits(map: &CollisionMap, scale: &Scale, out: &mut String) {
    let longest = map
        .waits
        .iter()
        .filter_map(|w| w.duration_ns)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let mut order: Vec<_> = map.waits.iter().collect();
    order.sort_by_key(|w| std::cmp::Reverse(w.duration_ns.unwrap_or(0)));
    for w in order {
        let (x, y) = (scale.x(w.start_ns), scale.y(w.row));
        let d = w.duration_ns.unwrap_or(0);
        let r = 3.0 + 11.0 * (d as f64 / longest).sqrt();
        let end = scale.x(w.start_ns + d as i64);
        let how_long = w
            .duration_ns
            .map_or("end not seen".to_owned(), |d| ms_label(d as i64));
        let _ = writeln!(
            out,
            "<g><title>{} waited {how_long} at {}; holder: {}</title>\
             <line x1=\"{x:.1}\" y1=\"{y:.1}\" x2=\"{end:.1}\" y2=\"{y:.1}\" stroke=\"#000000\" \
             stroke-width=\"2\"/><circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"{r:.1}\" fill=\"{}\" \
             fill-opacity=\"0.75\" stroke=\"{}\" stroke-width=\"2\"/></g>",
            w.waiter.label(),
            ms_label(w.start_ns.max(0)),
            text(&w.holder.label()),
            holder_colour(&w.holder),
            colour(w.waiter)
        );
    }
}

/// The walkers' colours with their step counts and direction, the
/// holders' fills, and what was lost or left out.
fn legend(map: &CollisionMap, out: &mut String) {
    let x = WIDTH - RIGHT + 16.0;
    let mut y = TOP + 6.0;
    let mut line = |out: &mut String, swatch: Option<&str>, s: &str| {
        if let Some(fill) = swatch {
            let _ = writeln!(
                out,
                "<rect x=\"{x}\" y=\"{:.1}\" width=\"12\" height=\"12\" fill=\"{fill}\"/>",
                y - 10.0
            );
        }
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{y:.1}\" font-size=\"11\">{}</text>",
            x + 18.0,
            text(s)
        );
        y += 17.0;
    };
    line(out, None, "walkers:");
    for w in &map.walkers {
        let way = match direction(w) {
            Some(true) => "upward",
            Some(false) => "downward",
            None => "both ways",
        };
        line(
            out,
            Some(colour(w.context)),
            &format!("{}: {} steps, {way}", w.context.label(), w.steps.len()),
        );
        if w.lost > 0 || w.left_out > 0 {
            line(
                out,
                None,
                &format!("  {} lost, {} outside its teardown", w.lost, w.left_out),
            );
        }
    }
    line(out, None, "");
    line(out, None, &format!("PTE-lock waits: {}", map.waits.len()));
    let mut holders: Vec<&Holder> = map.waits.iter().map(|w| &w.holder).collect();
    holders.sort();
    holders.dedup();
    for h in holders {
        let n = map.waits.iter().filter(|w| &w.holder == h).count();
        line(
            out,
            Some(holder_colour(h)),
            &format!("held by {}: {n}", h.label()),
        );
    }
    if map.unplaced_waits > 0 {
        line(
            out,
            None,
            &format!("{} not placed (waiter in no step)", map.unplaced_waits),
        );
    }
}
