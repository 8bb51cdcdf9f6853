"""The one home of TotalSegmentator's conventions: tasks and the models they
load, class maps, the command line and the weights check."""
