"""The rate-distortion benchmark harness behind `nvc bench`.

    datasets   UVG discovery, user files, generated clips; quick-mode crop / scale
    anchors    x264, x265 and SVT-AV1 through PyAV with fixed, documented configurations
    codecs     anchors and registered nvc codecs behind one interface, with rate points
    runner     the resumable loop over sequences x codecs x rate points, and the metrics
    bdrate     Bjontegaard BD-rate / BD-PSNR (pchip, Akima, cubic), in numpy
    report     JSON, CSV, Markdown and RD-curve PNGs
    published  published UVG curves (data/published_uvg.json) for reference
    cli        `add_parser(subparsers)` and `run(args)` for `nvc bench`; `main()` standalone

Nothing here imports torch unless an nvc codec that needs it is run.
"""
