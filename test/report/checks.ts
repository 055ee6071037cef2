import { readFileSync } from "node:fs";
import { expect } from "vitest";

/** Width and height from a PNG's IHDR chunk, after checking the signature. */
export function pngSize(file: string): { width: number; height: number } {
  const png = readFileSync(file);
  expect(png.subarray(0, 8).toString("hex")).toBe("89504e470d0a1a0a");
  expect(png.subarray(12, 16).toString("ascii")).toBe("IHDR");
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

/** Anything in an HTML file that would make a browser fetch from elsewhere. */
export function externalReferences(html: string): string[] {
  const patterns = [
    /\b(?:src|href|action|poster|data)\s*=\s*["']?\s*(?:https?:)?\/\//gi,
    /url\(\s*["']?\s*(?:https?:)?\/\//gi,
    /@import/gi,
    /<script/gi,
    /<link/gi,
    /<iframe/gi,
  ];
  return patterns.flatMap((p) => html.match(p) ?? []);
}

/** The tick labels of a Vega SVG's x-axis. */
export function xTickLabels(svg: string): string[] {
  const axis = svg.slice(svg.indexOf('aria-label="X-axis'));
  const labels = axis.slice(axis.indexOf('class="mark-text role-axis-label"'));
  return [...labels.slice(0, labels.indexOf("</g>")).matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map(
    (m) => m[1]!,
  );
}
