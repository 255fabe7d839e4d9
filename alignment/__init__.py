"""Face alignment of raw photos by facial landmarks, as NVIDIA aligned FFHQ (`alignment.faces`), and the framings
(where a network's faces sit in the frame) it aligns to. Used by dataset_tool (create.py --align), projection
(run_generator.py --mode project) and the explorer's photo upload."""
