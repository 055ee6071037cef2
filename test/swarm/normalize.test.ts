import { describe, expect, it } from "vitest";
import { diffHash, normalizeDiff, paramKey } from "../../src/swarm/normalize.js";

const DIFF = `diff --git a/train.py b/train.py
index 3b18e51..a9c2f3d 100644
--- a/train.py
+++ b/train.py
@@ -10,7 +10,7 @@ def main():
 depth = 8
 width = 512
-lr = 0.01
+lr = 0.02
 steps = 100
 warmup = 10
 seed = 0
`;

describe("normalizeDiff", () => {
  it("keeps the files and their removed and added lines, in order", () => {
    expect(normalizeDiff(DIFF)).toBe("file train.py\n-lr = 0.01\n+lr = 0.02\n");
  });

  it("ignores blob hashes, hunk positions, context, trailing whitespace and CRLF", () => {
    const moved = DIFF.replace("index 3b18e51..a9c2f3d", "index 0000001..0000002")
      .replace("@@ -10,7 +10,7 @@ def main():", "@@ -40,5 +40,5 @@")
      .replace(" depth = 8\n", "")
      .replace(" seed = 0\n", "")
      .replace("+lr = 0.02", "+lr = 0.02   ")
      .replace(/\n/g, "\r\n");
    expect(diffHash(moved)).toBe(diffHash(DIFF));
  });

  it("tells different changes apart: another value, another file, another direction", () => {
    const hashes = new Set([
      diffHash(DIFF),
      diffHash(DIFF.replace("+lr = 0.02", "+lr = 0.03")),
      diffHash(DIFF.replaceAll("train.py", "model.py")),
      diffHash(DIFF.replace("-lr = 0.01\n+lr = 0.02", "-lr = 0.02\n+lr = 0.01")),
    ]);
    expect(hashes.size).toBe(4);
  });

  it("reads a removed line that looks like a file header as a removed line", () => {
    const sql = `diff --git a/q.sql b/q.sql
--- a/q.sql
+++ b/q.sql
@@ -1,2 +1,1 @@
--- a comment
 SELECT 1;
`;
    expect(normalizeDiff(sql)).toBe("file q.sql\n--- a comment\n");
  });

  it("orders files by path, so that two tools listing them differently agree", () => {
    const a = `diff --git a/a.py b/a.py\n@@ -1 +1 @@\n-x\n+y\n`;
    const b = `diff --git a/b.py b/b.py\n@@ -1 +1 @@\n-p\n+q\n`;
    expect(normalizeDiff(a + b)).toBe(normalizeDiff(b + a));
    expect(normalizeDiff(a + b)).toBe("file a.py\n-x\n+y\nfile b.py\n-p\n+q\n");
  });

  it("keeps what happened to a file as a whole, and reads diff -u without git's header", () => {
    const added = `diff --git a/new.py b/new.py\nnew file mode 100644\nindex 0000000..e69de29\n--- /dev/null\n+++ b/new.py\n@@ -0,0 +1 @@\n+x = 1\n`;
    expect(normalizeDiff(added)).toBe("file new.py\nnew file mode 100644\n--- /dev/null\n+x = 1\n");
    const plain = `--- train.py\t2026-01-01 10:00:00\n+++ train.py\t2026-01-02 10:00:00\n@@ -3 +3 @@\n-lr = 0.01\n+lr = 0.02\n`;
    expect(normalizeDiff(plain)).toBe(normalizeDiff(DIFF));
  });
});

describe("paramKey", () => {
  it("is the same for the same values in any order, and differs otherwise", () => {
    expect(paramKey({ lr: 0.02, depth: 8 })).toBe(paramKey({ depth: 8, lr: 0.02 }));
    expect(paramKey({ lr: 1 })).toBe(paramKey({ lr: 1.0 }));
    expect(paramKey({ lr: 1 })).not.toBe(paramKey({ lr: "1" }));
    expect(paramKey({ lr: 0.02, depth: 8 })).not.toBe(paramKey({ lr: 0.02, depth: 12 }));
  });
});
