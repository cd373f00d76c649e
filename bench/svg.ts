// Grouped bar charts as plain SVG text: pure, deterministic, no library.

export interface Series {
    readonly name: string;
    /** One value per category; undefined leaves a gap. */
    readonly values: ReadonlyArray<number | undefined>;
}

export interface BarChart {
    readonly title: string;
    /** Label of the value axis, e.g. "TPS". */
    readonly unit: string;
    readonly categories: readonly string[];
    readonly series: readonly Series[];
}

/** Text for SVG element content and attribute values. */
export function xmlText(value: string): string {
    return value.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&apos;");
}

/** The smallest 1, 2 or 5 × 10^k at or above `max`: the top of the value axis. */
export function niceCeiling(max: number): number {
    if (!(max > 0)) {
        return 1;
    }
    const power = 10 ** Math.floor(Math.log10(max));
    return [1, 2, 5, 10].map((m) => m * power).find((v) => v >= max * (1 - 1e-12)) ?? 10 * power;
}

/** A value as a bar label: three significant figures, no exponent. */
export function shortNumber(value: number): string {
    if (value === 0) {
        return "0";
    }
    const digits = Math.max(0, 2 - Math.floor(Math.log10(Math.abs(value))));
    return value.toFixed(Math.min(digits, 3));
}

const COLOURS = ["#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377"];
const WIDTH = 720;
const HEIGHT = 360;
const PLOT = { left: 70, right: 20, top: 40, bottom: 70 };

/** The chart as an SVG document. */
export function renderBarChart(chart: BarChart): string {
    const values = chart.series.flatMap((s) => s.values.filter((v): v is number => v !== undefined));
    const top = niceCeiling(Math.max(0, ...values));
    const plotWidth = WIDTH - PLOT.left - PLOT.right;
    const plotHeight = HEIGHT - PLOT.top - PLOT.bottom;
    const y = (v: number) => PLOT.top + plotHeight - (v / top) * plotHeight;
    const group = plotWidth / Math.max(1, chart.categories.length);
    const bar = (group * 0.8) / Math.max(1, chart.series.length);
    const f = (n: number) => n.toFixed(1);
    const parts: string[] = [
        `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
        `<rect width="${WIDTH}" height="${HEIGHT}" fill="#ffffff"/>`,
        `<text x="${WIDTH / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${xmlText(chart.title)}</text>`,
        `<text x="16" y="${f(PLOT.top + plotHeight / 2)}" text-anchor="middle" transform="rotate(-90 16 ${f(PLOT.top + plotHeight / 2)})">${xmlText(chart.unit)}</text>`,
    ];
    for (let i = 0; i <= 5; i++) {
        const v = (top * i) / 5;
        parts.push(
            `<line x1="${PLOT.left}" y1="${f(y(v))}" x2="${WIDTH - PLOT.right}" y2="${f(y(v))}" stroke="#dddddd"/>`,
            `<text x="${PLOT.left - 6}" y="${f(y(v) + 4)}" text-anchor="end">${xmlText(shortNumber(v))}</text>`,
        );
    }
    chart.categories.forEach((category, c) => {
        const x0 = PLOT.left + c * group + group * 0.1;
        parts.push(
            `<text x="${f(PLOT.left + c * group + group / 2)}" y="${PLOT.top + plotHeight + 18}" text-anchor="middle">${xmlText(category)}</text>`,
        );
        chart.series.forEach((series, s) => {
            const v = series.values[c];
            if (v === undefined) {
                return;
            }
            const x = x0 + s * bar;
            parts.push(
                `<rect x="${f(x)}" y="${f(y(v))}" width="${f(bar - 2)}" height="${f(PLOT.top + plotHeight - y(v))}" fill="${COLOURS[s % COLOURS.length]}"/>`,
                `<text x="${f(x + (bar - 2) / 2)}" y="${f(y(v) - 4)}" text-anchor="middle" font-size="10">${xmlText(shortNumber(v))}</text>`,
            );
        });
    });
    chart.series.forEach((series, s) => {
        const x = PLOT.left + s * 170;
        const ly = HEIGHT - 22;
        parts.push(
            `<rect x="${x}" y="${ly - 10}" width="12" height="12" fill="${COLOURS[s % COLOURS.length]}"/>`,
            `<text x="${x + 18}" y="${ly}">${xmlText(series.name)}</text>`,
        );
    });
    parts.push(
        `<line x1="${PLOT.left}" y1="${PLOT.top + plotHeight}" x2="${WIDTH - PLOT.right}" y2="${PLOT.top + plotHeight}" stroke="#333333"/>`,
        "</svg>",
        "",
    );
    return parts.join("\n");
}
