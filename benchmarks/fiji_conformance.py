"""Check medseg's ISBI 2012 scorer against Fiji's own Java code.

Needs a JDK (``javac``, ``java``) and a checkout of fiji/Trainable_Segmentation::

    git clone https://github.com/fiji/Trainable_Segmentation
    python benchmarks/fiji_conformance.py --fiji Trainable_Segmentation

The script compiles, from that checkout, ``utils/WatershedTransform2D.java`` (with
``Cursor2D``, ``Neighborhood2D*``, ``PixelRecord``), ``metrics/ClassificationStatistics``,
``ClusteredWarpingMismatches`` and the methods ``simple2DBertrand``, ``simplePointWarp2d``,
``simple3d``/``nca``/``ncb``, ``classifyMismatches2d``, ``clusterMismatchesByType``,
``getNeighborhood`` (``WarpingError``), ``getForegroundRestrictedRandIndexStatsN2``
(``RandError``), ``foregroundRestrictedFscore`` (``VariationOfInformation``) and
``precisionRecallStats`` (``PixelError``), next to
minimal stand-ins for the ImageJ classes they touch (pixel access only) and a plain
4-connected labelling in place of ImageJ's ``FindConnectedRegions`` (label ids do not
matter to these metrics). It then compares on random images:

1. thinning: ``WatershedTransform2D(binary, 4).apply()`` labels vs :func:`fiji_watershed`;
2. the simple-point table: ``simple2DBertrand(patch, 4)`` on all 512 3x3 patches;
3. warping: ``simplePointWarp2d`` warped maps and error vs :func:`warping_error`;
4. ``classifyMismatches2d`` + ``clusterMismatchesByType`` vs :func:`classify_mismatches`;
5. V_rand / V_info after thinning (Fiji's threshold loop, per-slice means, maxima) vs
   :func:`isbi2012_scores`;
6. the pixel error (``PixelError.precisionRecallStats`` pooled over slices,
   ``ClassificationStatistics``, best F over thresholds) vs :func:`pixel_error`.

Exit status 1 when anything differs beyond 1e-12.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

STUBS = {
    "ij/IJ.java": """package ij;
public class IJ { public static void showStatus(String s){} public static void log(String s){}
  public static void error(String s){} public static void showProgress(double p){} public static void showProgress(int a,int b){} }""",
    "ij/ImagePlus.java": """package ij; import ij.process.*;
public class ImagePlus { ImageProcessor ip; public ImagePlus(String t, ImageProcessor ip){this.ip=ip;}
  public ImageProcessor getProcessor(){return ip;} public void setProcessor(ImageProcessor p){ip=p;} public void setTitle(String s){}
  public int getWidth(){return ip.getWidth();} public int getHeight(){return ip.getHeight();} }""",
    "ij/process/Blitter.java": "package ij.process; public interface Blitter { int DIFFERENCE = 6; }",
    "ij/process/ImageProcessor.java": """package ij.process;
public abstract class ImageProcessor {
  public int width, height; public float[] px;
  public int getWidth(){return width;} public int getHeight(){return height;}
  public float getf(int x,int y){return px[y*width+x];} public void setf(int x,int y,float v){px[y*width+x]=v;}
  public int get(int x,int y){return (int)px[y*width+x];} public void set(int x,int y,int v){px[y*width+x]=v;}
  public int getPixel(int x,int y){ return (x<0||y<0||x>=width||y>=height) ? 0 : (int)px[y*width+x]; }
  public Object getPixels(){return px;} public double getMin(){return 0;} public double getMax(){return 255;}
  public ImageProcessor createProcessor(int w,int h){return new FloatProcessor(w,h);}
  public ImageProcessor duplicate(){FloatProcessor f=new FloatProcessor(width,height); System.arraycopy(px,0,f.px,0,px.length); return f;}
  public void insert(ImageProcessor ip,int xl,int yl){ for(int y=0;y<ip.height;y++)for(int x=0;x<ip.width;x++){int X=x+xl,Y=y+yl;
    if(X>=0&&Y>=0&&X<width&&Y<height) px[Y*width+X]=ip.px[y*ip.width+x];}}
  public void copyBits(ImageProcessor ip,int xl,int yl,int mode){ for(int y=0;y<ip.height;y++)for(int x=0;x<ip.width;x++){int X=x+xl,Y=y+yl;
    if(X>=0&&Y>=0&&X<width&&Y<height) px[Y*width+X]=Math.abs(px[Y*width+X]-ip.px[y*ip.width+x]);}}
  public ImageProcessor convertToByte(boolean scale){ByteProcessor b=new ByteProcessor(width,height);
    for(int i=0;i<px.length;i++) b.px[i]=px[i]>0?255:0; return b;}
}""",
    "ij/process/FloatProcessor.java": """package ij.process;
public class FloatProcessor extends ImageProcessor { public FloatProcessor(int w,int h){width=w;height=h;px=new float[w*h];}
  public FloatProcessor(int w,int h,double[] v){this(w,h); for(int i=0;i<v.length;i++) px[i]=(float)v[i];} }""",
    "ij/process/ByteProcessor.java": """package ij.process;
public class ByteProcessor extends ImageProcessor { public ByteProcessor(int w,int h){width=w;height=h;px=new float[w*h];}
  public ImageProcessor duplicate(){ByteProcessor f=new ByteProcessor(width,height); System.arraycopy(px,0,f.px,0,px.length); return f;} }""",
    "ij/process/ShortProcessor.java": """package ij.process;
public class ShortProcessor { public short[] pix; double max; public ShortProcessor(int w,int h){pix=new short[w*h];}
  public Object getPixels(){return pix;} public void resetMinAndMax(){max=0; for(short s:pix) max=Math.max(max, s & 0xffff);}
  public double getMax(){return max;} }""",
    "org/jogamp/vecmath/Point3f.java": """package org.jogamp.vecmath;
public class Point3f { public float x,y,z; public Point3f(float x,float y,float z){this.x=x;this.y=y;this.z=z;} }""",
    "WarpingResults.java": """import ij.ImagePlus; import java.util.ArrayList; import org.jogamp.vecmath.Point3f;
public class WarpingResults { public ImagePlus warpedSource; public double warpingError; public ArrayList<Point3f> mismatches; }""",
    "Utils.java": """import ij.*; import ij.process.*;
public class Utils { public static class Results { public ImagePlus allRegions; }
  public static Results connectedComponents(ImagePlus im, int adjacency) {
    ImageProcessor ip = im.getProcessor(); int w = ip.getWidth(), h = ip.getHeight();
    FloatProcessor out = new FloatProcessor(w, h); int next = 0; int[] q = new int[w*h];
    for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) {
      if (ip.getf(x,y) == 0 || out.getf(x,y) != 0) continue; next++; int head=0, tail=0; q[tail++] = y*w+x; out.setf(x,y,next);
      while (head < tail) { int p = q[head++]; int py = p / w, pxx = p % w;
        for (int dy=-1; dy<=1; dy++) for (int dx=-1; dx<=1; dx++) { if (dx==0&&dy==0) continue; if (adjacency==4 && dx!=0 && dy!=0) continue;
          int nx=pxx+dx, ny=py+dy; if (nx<0||ny<0||nx>=w||ny>=h) continue; if (ip.getf(nx,ny)==0 || out.getf(nx,ny)!=0) continue;
          out.setf(nx,ny,next); q[tail++]=ny*w+nx; } } }
    Results r = new Results(); r.allRegions = new ImagePlus("cc", out); return r; } }""",
}

DRIVER = """import ij.*; import ij.process.*; import java.io.*; import java.util.*; import java.awt.Point;
import org.jogamp.vecmath.Point3f; import trainableSegmentation.utils.WatershedTransform2D;
public class Conformance {
  public static final double SIMPLE_POINT_THRESHOLD = 0;
  public static final int MERGE=0x1, SPLIT=0x2, HOLE_ADDITION=0x4, OBJECT_DELETION=0x8, OBJECT_ADDITION=0x10, HOLE_DELETION=0x20;
  %(methods)s
  static ShortProcessor shorts(ImageProcessor ip){ ShortProcessor s=new ShortProcessor(ip.width,ip.height);
    for(int i=0;i<ip.px.length;i++) s.pix[i]=(short)(int)ip.px[i]; return s; }
  static float[] floats(String[] t, int from, int n){ float[] f=new float[n]; for(int i=0;i<n;i++) f[i]=Float.parseFloat(t[from+i]); return f; }
  public static void main(String[] a) throws Exception {
    BufferedReader r=new BufferedReader(new InputStreamReader(System.in)); String line; StringBuilder out=new StringBuilder();
    Conformance c=new Conformance();
    while((line=r.readLine())!=null){ String[] t=line.trim().split(" "); String mode=t[0];
      int h=Integer.parseInt(t[1]), w=Integer.parseInt(t[2]), n=w*h;
      if(mode.equals("thin")){ FloatProcessor fp=new FloatProcessor(w,h); float[] v=floats(t,3,n);
        for(int i=0;i<n;i++) fp.px[i]= v[i]>0?0f:255f; ImageProcessor res=new WatershedTransform2D(fp,4).apply();
        for(int i=0;i<n;i++) out.append((int)res.px[i]).append(' ');
      } else if(mode.equals("simple")){ for(int code=0;code<512;code++){ float[] in=new float[27];
          for(int i=0;i<9;i++) in[i+9]=(code>>i)&1; out.append(c.simple3d(in,6)?'1':'0'); }
      } else if(mode.equals("warp")){ double th=Double.parseDouble(t[3]); FloatProcessor src=new FloatProcessor(w,h), tgt=new FloatProcessor(w,h);
        float[] s=floats(t,4,n), p=floats(t,4+n,n); src.px=s; tgt.px=p;
        WarpingResults res=c.simplePointWarp2d(src,tgt,null,th); float[] q=(float[])res.warpedSource.getProcessor().getPixels();
        for(int i=0;i<n;i++) out.append(q[i]>0?'1':'0'); out.append(' ').append(res.warpingError);
        int[] labels=c.classifyMismatches2d(res.warpedSource, res.mismatches, -1);
        ClusteredWarpingMismatches m=c.clusterMismatchesByType(labels);
        out.append(' ').append(m.numOfObjectAdditions).append(' ').append(m.numOfHoleDeletions).append(' ').append(m.numOfMergers)
           .append(' ').append(m.numOfHoleAdditions).append(' ').append(m.numOfObjectDeletions).append(' ').append(m.numOfSplits);
      } else if(mode.equals("isbi")){ int z=Integer.parseInt(t[3]); float[][] g=new float[z][], p=new float[z][];
        for(int k=0;k<z;k++){ g[k]=floats(t,4+k*n,n); p[k]=floats(t,4+(z+k)*n,n); } double bestR=0, bestI=0;
        for(double th=0.0; th<=1.0; th+=0.1){ double sumR=0, sumI=0;
          for(int k=0;k<z;k++){ FloatProcessor gl=new FloatProcessor(w,h), bp=new FloatProcessor(w,h);
            for(int i=0;i<n;i++){ gl.px[i]= g[k][i]>th?255f:0f; bp.px[i]= p[k][i]>th?0f:255f; }
            ShortProcessor c1=shorts(Utils.connectedComponents(new ImagePlus("g",gl),4).allRegions.getProcessor());
            ShortProcessor c2=shorts(new WatershedTransform2D(bp,4).apply());
            sumR += c.getForegroundRestrictedRandIndexStatsN2(c1,c2).fScore; sumI += c.foregroundRestrictedFscore(c1,c2); }
          double vr=sumR/z, vi=sumI/z; if(vr>bestR) bestR=vr; if(vi>bestI) bestI=vi; }
        out.append(bestR).append(' ').append(bestI);
        double bestF=0;
        for(double th=0.0; th<=1.0; th+=0.1){ double tp=0, tn=0, fp=0, fn=0;
          for(int k=0;k<z;k++){ FloatProcessor gl=new FloatProcessor(w,h), pl=new FloatProcessor(w,h); gl.px=g[k]; pl.px=p[k];
            ClassificationStatistics cs=c.precisionRecallStats(gl,pl,th);
            tp+=cs.truePositives; tn+=cs.trueNegatives; fp+=cs.falsePositives; fn+=cs.falseNegatives; }
          double f=new ClassificationStatistics(tp,tn,fp,fn,0).fScore; if(f>bestF) bestF=f; }
        out.append(' ').append(1-bestF); }
      out.append('\\n'); }
    System.out.print(out);
  }
}"""


def _method(source: str, signature: str) -> str:
    """The method whose declaration matches the regex ``signature``, up to its closing brace."""
    match = re.search(signature, source)
    if match is None:
        raise SystemExit(f"method {signature!r} not found in the Fiji source")
    depth, i = 0, source.index("{", match.end())
    for j in range(i, len(source)):
        depth += {"{": 1, "}": -1}.get(source[j], 0)
        if depth == 0:
            return source[match.start() : j + 1]
    raise SystemExit(f"unbalanced braces after {signature!r}")


def _build(fiji: Path, work: Path) -> None:
    main = fiji / "src" / "main" / "java" / "trainableSegmentation"
    for rel, text in STUBS.items():
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).write_text(text)
    utils = work / "trainableSegmentation" / "utils"
    utils.mkdir(parents=True)
    for name in (
        "WatershedTransform2D",
        "Cursor2D",
        "Neighborhood2D",
        "Neighborhood2DC4",
        "Neighborhood2DC8",
        "PixelRecord",
    ):
        (utils / f"{name}.java").write_text((main / "utils" / f"{name}.java").read_text())
    for name in ("ClassificationStatistics", "ClusteredWarpingMismatches"):
        text = (main / "metrics" / f"{name}.java").read_text()
        (work / f"{name}.java").write_text(text[text.index("public class") :])
    warping = (main / "metrics" / "WarpingError.java").read_text()
    rand = (main / "metrics" / "RandError.java").read_text()
    vi = (main / "metrics" / "VariationOfInformation.java").read_text()
    pixel = (main / "metrics" / "PixelError.java").read_text()
    methods = [
        _method(warping, r"public boolean simple2DBertrand\("),
        _method(
            warping,
            r"public WarpingResults simplePointWarp2d\(\s*final ImageProcessor source,\s*final ImageProcessor target,\s*final ImageProcessor mask,\s*double binaryThreshold\)",
        ),
        _method(warping, r"int nca\("),
        _method(warping, r"int ncb\("),
        _method(warping, r"boolean simple3d\("),
        _method(
            warping,
            r"public int\[\] classifyMismatches2d\(\s*ImagePlus warpedLabels,\s*ArrayList<Point3f> mismatches,\s*int radius\)",
        ),
        _method(warping, r"public ClusteredWarpingMismatches clusterMismatchesByType\("),
        _method(warping, r"public ArrayList<Integer> getNeighborhood\("),
        _method(
            rand,
            r"public ClassificationStatistics getForegroundRestrictedRandIndexStatsN2\(\s*ShortProcessor cluster1,",
        ),
        _method(vi, r"public double foregroundRestrictedFscore\(\s*ShortProcessor cluster1,"),
        _method(
            pixel,
            r"public\s+ClassificationStatistics precisionRecallStats\(\s*ImageProcessor label,\s*ImageProcessor proposal,\s*double binaryThreshold\)",
        ),
    ]
    (work / "Conformance.java").write_text(DRIVER % {"methods": "\n".join(methods)})
    sources = [str(p) for p in work.rglob("*.java")]
    subprocess.run(["javac", "-nowarn", "-d", str(work / "classes"), *sources], check=True)


def _fmt(values: np.ndarray) -> str:
    return " ".join(repr(float(v)) for v in np.asarray(values, dtype=np.float64).ravel())


def _voronoi_cells(rng, h, w, n, width):
    seeds = np.zeros((h, w), int)
    seeds[rng.integers(0, h, n), rng.integers(0, w, n)] = np.arange(1, n + 1)
    _, ind = ndi.distance_transform_edt(seeds == 0, return_indices=True)
    return ~(ndi.morphological_gradient(seeds[tuple(ind)], size=width) > 0)


def _proposal(rng, cells):
    blurred = ndi.gaussian_filter(cells.astype(float), rng.uniform(0.7, 2))
    return np.clip(blurred + rng.normal(0, rng.uniform(0.05, 0.3), cells.shape), 0, 1).astype(np.float32)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fiji", required=True, type=Path, help="checkout of fiji/Trainable_Segmentation")
    parser.add_argument("--cases", type=int, default=60)
    args = parser.parse_args()

    from medseg.eval._flooding import fiji_watershed
    from medseg.eval.isbi2012 import isbi2012_scores
    from medseg.eval.warping import classify_mismatches, simple_point_table, warping_error

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        _build(args.fiji, work)
        lines, checks = [], []
        for _ in range(args.cases):
            h, w = (int(v) for v in rng.integers(4, 48, 2))
            cells = _voronoi_cells(rng, h, w, max(1, h * w // 40), int(rng.integers(2, 4)))
            prop = _proposal(rng, cells)
            th = float(rng.choice([0.1, 0.30000000000000004, 0.5, 0.7, 0.8999999999999999]))
            binary = prop > th
            lines.append(f"thin {h} {w} {_fmt(binary)}")
            checks.append(("thin", binary))
            lines.append(f"warp {h} {w} {th!r} {_fmt(cells)} {_fmt(prop)}")
            checks.append(("warp", (cells, prop, th)))
            z = int(rng.integers(1, 4))
            gt = np.stack(
                [np.where(_voronoi_cells(rng, h, w, max(1, h * w // 40), 2), 255, 0) for _ in range(z)]
            )
            pr = np.stack([_proposal(rng, s > 0) for s in gt])
            lines.append(f"isbi {h} {w} {z} {_fmt(gt)} {_fmt(pr)}")
            checks.append(("isbi", (gt, pr)))
        lines.append("simple 3 3")
        checks.append(("simple", None))
        cmd = ["java", "-cp", str(work / "classes"), "Conformance"]
        out = subprocess.run(
            cmd, input="\n".join(lines) + "\n", capture_output=True, text=True, check=True
        ).stdout
    worst = {"thin": 0.0, "warp": 0.0, "classify": 0.0, "isbi": 0.0, "pixel": 0.0, "simple": 0.0}
    for (kind, data), reply in zip(checks, out.splitlines(), strict=True):
        fields = reply.split()
        if kind == "thin":
            fiji = np.array(fields, int).reshape(data.shape)
            worst["thin"] = max(worst["thin"], float(np.count_nonzero(fiji != fiji_watershed(data))))
        elif kind == "warp":
            cells, prop, th = data
            fiji = np.array([c == "1" for c in fields[0]]).reshape(cells.shape)
            ours = warping_error(cells, prop, threshold=th)
            wrong = np.count_nonzero(fiji != ours.warped)
            worst["warp"] = max(worst["warp"], float(wrong), abs(float(fields[1]) - ours.error))
            counts = np.array(classify_mismatches(ours.warped, ours.mismatch))
            worst["classify"] = max(
                worst["classify"], float(np.abs(counts - np.array(fields[2:], int)).max())
            )
        elif kind == "isbi":
            ours = isbi2012_scores(*data)
            worst["isbi"] = max(
                worst["isbi"], abs(float(fields[0]) - ours.v_rand), abs(float(fields[1]) - ours.v_info)
            )
        else:  # patch bit i is 3x3 position i (row-major, centre = bit 4)
            fiji = np.array([c == "1" for c in fields[0]])
            order = ((-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1))
            codes = [
                sum(((patch >> ((dy + 1) * 3 + dx + 1)) & 1) << k for k, (dy, dx) in enumerate(order))
                for patch in range(512)
            ]
            worst["simple"] = float(np.count_nonzero(simple_point_table(4)[codes] != fiji))
    print("largest difference to Fiji per check (pixels or score):")
    for name, value in worst.items():
        print(f"  {name:9s} {value:.3g}")
    return 1 if any(v > 1e-12 for v in worst.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
