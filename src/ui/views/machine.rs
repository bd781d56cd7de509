//! The machine strip under the header: the GPU's utilisation, memory, power and temperature
//! (from NVML), or without one the training process's CPU share and resident memory, as
//! people keep nvitop or btop beside a run. Fields give way whole, least useful first.

use super::pieces::Pieces;
use crate::format::human_bytes;
use crate::machine::MachineSample;
use crate::ui::app::App;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::widgets::Paragraph;

/// GiB with one decimal, without the unit (the strip says it once).
fn gib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / f64::from(1u32 << 30))
}

/// The strip's pieces for `sample`.
fn pieces(app: &App, sample: &MachineSample) -> Pieces {
    let theme = &app.theme;
    let mut p = Pieces::new();
    if let Some(gpu) = &sample.gpu {
        p.push(format!(" GPU {}", gpu.index), theme.title(), 0);
        p.push(format!(" {}", gpu.name), Style::new(), 6);
        if let Some(u) = gpu.utilization {
            let style = if u >= 80 { theme.good() } else { theme.warn() };
            p.push(" · ", Style::new(), 0);
            p.push(format!("{u:>3}% busy"), style, 0);
        }
        p.push(
            format!(
                " · mem {}/{} GiB",
                gib(gpu.memory_used),
                gib(gpu.memory_total)
            ),
            Style::new(),
            0,
        );
        if let Some(mine) = gpu.process_memory {
            p.push(format!(" (this run {})", gib(mine)), theme.dim(), 5);
        }
        if let Some(w) = gpu.power_w {
            p.push(format!(" · {w:.0} W"), Style::new(), 3);
        }
        if let Some(t) = gpu.temperature_c {
            let style = if t >= 85 { theme.bad() } else { Style::new() };
            p.push(format!(" · {t} °C"), style, 2);
        }
        if let Some(proc) = &sample.process {
            p.push(
                format!(
                    " │ CPU {:.0}% · RSS {}",
                    proc.cpu_percent,
                    human_bytes(proc.rss_bytes)
                ),
                theme.dim(),
                4,
            );
        }
    } else {
        match &sample.process {
            Some(proc) => {
                p.push(" CPU", theme.title(), 0);
                p.push(format!(" {:.0}%", proc.cpu_percent), Style::new(), 0);
                p.push(format!(" of {} cores", proc.cores), Style::new(), 3);
                p.push(
                    format!(" · RSS {}", human_bytes(proc.rss_bytes)),
                    Style::new(),
                    0,
                );
            }
            None => p.push(
                " the training process is not on this machine",
                theme.dim(),
                0,
            ),
        }
        if let Some(why) = &sample.no_gpu {
            p.push(format!(" · {why}"), theme.dim(), 4);
        }
    }
    p
}

/// Draws the strip; nothing without a sample.
pub(super) fn render(app: &App, frame: &mut Frame, area: Rect) {
    let Some(sample) = &app.machine else {
        return;
    };
    let line = pieces(app, sample).fit(area.width as usize);
    frame.render_widget(Paragraph::new(line), area);
}

#[cfg(test)]
mod tests {
    use crate::machine::{GpuSample, MachineSample, ProcessSample};
    use crate::ui::app::tests::history;
    use crate::ui::theme::Theme;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    fn screen(sample: Option<MachineSample>, theme: Theme, width: u16, height: u16) -> String {
        let mut app = history(theme);
        app.machine = sample;
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|f| super::super::render(&app, f)).unwrap();
        let mut buffer = terminal.backend().buffer().clone();
        if theme.ascii {
            crate::ui::theme::asciify(&mut buffer);
        }
        let mut text = String::new();
        for y in 0..height {
            for x in 0..width {
                text += buffer[(x, y)].symbol();
            }
            text += "\n";
        }
        text
    }

    const COLOUR: Theme = Theme {
        color: true,
        ascii: false,
    };

    fn process() -> ProcessSample {
        ProcessSample {
            cpu_percent: 187.4,
            rss_bytes: 1_288_490_189,
            cores: 2,
        }
    }

    fn gpu() -> MachineSample {
        MachineSample {
            gpu: Some(GpuSample {
                index: 0,
                name: "NVIDIA H100 80GB HBM3".into(),
                utilization: Some(87),
                memory_used: 33_500_000_000,
                memory_total: 85_520_000_000,
                process_memory: Some(30_100_000_000),
                power_w: Some(412.3),
                temperature_c: Some(64),
            }),
            process: Some(ProcessSample {
                cpu_percent: 103.0,
                rss_bytes: 5_476_083_302,
                cores: 16,
            }),
            no_gpu: None,
        }
    }

    fn cpu() -> MachineSample {
        MachineSample {
            gpu: None,
            process: Some(process()),
            no_gpu: Some("no NVIDIA driver (NVML not found)".into()),
        }
    }

    #[test]
    fn the_gpu_strip_at_80x24_and_160x48() {
        insta::assert_snapshot!("gpu_80x24", screen(Some(gpu()), COLOUR, 80, 24));
        insta::assert_snapshot!("gpu_160x48", screen(Some(gpu()), COLOUR, 160, 48));
    }

    #[test]
    fn the_cpu_strip_without_nvml_at_80x24_and_160x48() {
        insta::assert_snapshot!("cpu_80x24", screen(Some(cpu()), COLOUR, 80, 24));
        insta::assert_snapshot!("cpu_160x48", screen(Some(cpu()), COLOUR, 160, 48));
    }

    #[test]
    fn the_strip_gives_way_whole_and_is_ascii_in_ascii() {
        let ascii = Theme {
            color: false,
            ascii: true,
        };
        let text = screen(Some(gpu()), ascii, 80, 24);
        assert!(text.is_ascii());
        let strip = text.lines().nth(1).unwrap();
        assert!(
            strip.starts_with(" GPU 0 ") && strip.contains("87% busy"),
            "{strip}"
        );
        assert!(strip.contains("mem 31.2/79.6 GiB"), "{strip}");
        // Nothing is cut: each field is whole or absent.
        for field in ["412 W", "64 oC", "(this run 28.0)"] {
            let head = &field[..2];
            assert!(
                strip.contains(field) || !strip.contains(head),
                "{field}: {strip}"
            );
        }
        // Without a sample there is no strip: the body starts on line 2 as before.
        let none = screen(None, COLOUR, 80, 24);
        let with = screen(Some(cpu()), COLOUR, 80, 24);
        assert_eq!(none.lines().nth(1), with.lines().nth(2));
    }
}
