// A small client for Prometheus's HTTP API (/api/v1), as the tests use it:
// every call checks the API's own status and throws its error message.

export interface Sample {
    readonly metric: Record<string, string>;
    /** [unix seconds, value as text] */
    readonly value: [number, string];
}

export interface RangeSeries {
    readonly metric: Record<string, string>;
    readonly values: Array<[number, string]>;
}

export interface Target {
    readonly labels: Record<string, string>;
    readonly health: "up" | "down" | "unknown";
    readonly lastError: string;
    readonly scrapeUrl: string;
}

export interface Alert {
    readonly labels: Record<string, string>;
    readonly annotations: Record<string, string>;
    readonly state: "pending" | "firing";
    readonly activeAt: string;
}

export interface LoadedRule {
    readonly name: string;
    readonly query: string;
    readonly duration: number;
    readonly health: string;
    readonly lastError?: string;
    readonly type: string;
}

/** Thrown when Prometheus answers with `status: "error"`. */
export class PrometheusError extends Error {}

export class Prometheus {
    constructor(private readonly baseUrl: string) {}

    private async get<T>(path: string, params: Record<string, string> = {}): Promise<T> {
        const url = new URL(`/api/v1/${path}`, this.baseUrl);
        for (const [key, value] of Object.entries(params)) {
            url.searchParams.set(key, value);
        }
        const response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
        const body = (await response.json()) as { status: string; data: T; error?: string; errorType?: string };
        if (body.status !== "success") {
            throw new PrometheusError(`${path} ${JSON.stringify(params)}: ${body.errorType}: ${body.error}`);
        }
        return body.data;
    }

    /** An instant query's vector; throws on a PromQL error or a non-vector result. */
    async query(expr: string): Promise<Sample[]> {
        const data = await this.get<{ resultType: string; result: Sample[] }>("query", { query: expr });
        if (data.resultType !== "vector") {
            throw new PrometheusError(`${expr}: expected a vector, got ${data.resultType}`);
        }
        return data.result;
    }

    /** A range query over the last `seconds`, as a Grafana panel runs it. */
    async queryRange(expr: string, seconds: number, stepSeconds: number): Promise<RangeSeries[]> {
        const end = Date.now() / 1000;
        const data = await this.get<{ resultType: string; result: RangeSeries[] }>("query_range", {
            query: expr,
            start: String(end - seconds),
            end: String(end),
            step: String(stepSeconds),
        });
        return data.result;
    }

    async targets(): Promise<Target[]> {
        return (await this.get<{ activeTargets: Target[] }>("targets", { state: "active" })).activeTargets;
    }

    async alerts(): Promise<Alert[]> {
        return (await this.get<{ alerts: Alert[] }>("alerts")).alerts;
    }

    async rules(): Promise<LoadedRule[]> {
        const data = await this.get<{ groups: Array<{ name: string; rules: LoadedRule[] }> }>("rules");
        return data.groups.flatMap((g) => g.rules);
    }
}
