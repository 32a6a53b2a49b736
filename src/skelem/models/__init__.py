"""skelem.models"""
