"""From a segmentation to decisions: profiles and names, overlays, finder, distal outcomes, sizing, segment map."""
