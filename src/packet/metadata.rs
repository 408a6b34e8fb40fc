//! SIPREC recording metadata (`application/rs-metadata+xml`, RFC 7865): who the participants
//! are and which media stream (by its SDP `a=label`) each of them sends. Both the RFC's form
//! (`participantstreamassoc`) and the older draft form (`send` inside `participant`), which
//! some session border controllers still emit, are read.

use std::collections::HashMap;

/// Largest metadata document read (a few participants take a few kilobytes).
const MAX_METADATA_BYTES: usize = 32 * 1024;

/// A participant as the metadata names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    pub id: String,
    /// The display name, when given.
    pub name: Option<String>,
    /// The address of record (`sip:alice@example.com`), when given.
    pub aor: Option<String>,
}

impl Participant {
    /// What events call this participant's leg: the name, else the address of record.
    pub fn label(&self) -> Option<&str> {
        self.name.as_deref().or(self.aor.as_deref())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Metadata {
    pub participants: Vec<Participant>,
    /// SDP label -> the participant who sends that stream.
    pub senders: HashMap<String, String>,
}

impl Metadata {
    /// The participant who sends the stream with SDP label `label`.
    pub fn sender_of(&self, label: &str) -> Option<&Participant> {
        let id = self.senders.get(label)?;
        self.participants.iter().find(|p| &p.id == id)
    }
}

/// Parses a metadata document; `None` when it is not XML or not a `recording`.
pub fn parse(xml: &[u8]) -> Option<Metadata> {
    if xml.len() > MAX_METADATA_BYTES {
        return None;
    }
    let text = std::str::from_utf8(xml).ok()?;
    let doc = roxmltree::Document::parse(text).ok()?;
    let root = doc.root_element();
    if root.tag_name().name() != "recording" {
        return None;
    }
    let child_text = |node: roxmltree::Node<'_, '_>, tag: &str| {
        node.children()
            .find(|c| c.tag_name().name() == tag)
            .and_then(|c| c.text())
            .map(|t| t.trim().to_string())
    };
    // stream_id -> label
    let mut labels = HashMap::new();
    for stream in root.children().filter(|n| n.tag_name().name() == "stream") {
        if let (Some(id), Some(label)) = (stream.attribute("stream_id"), child_text(stream, "label")) {
            labels.insert(id.to_string(), label);
        }
    }
    let mut metadata = Metadata::default();
    let mut sends: Vec<(String, String)> = Vec::new();
    for p in root.children().filter(|n| n.tag_name().name() == "participant") {
        let Some(id) = p.attribute("participant_id").or_else(|| p.attribute("id")) else {
            continue;
        };
        let name_id = p.children().find(|c| c.tag_name().name() == "nameID");
        let aor = name_id.and_then(|n| n.attribute("aor")).map(str::to_string);
        let name = name_id.and_then(|n| child_text(n, "name")).filter(|n| !n.is_empty());
        for send in p.children().filter(|c| c.tag_name().name() == "send") {
            if let Some(stream) = send.text() {
                sends.push((id.to_string(), stream.trim().to_string()));
            }
        }
        metadata.participants.push(Participant {
            id: id.to_string(),
            name,
            aor,
        });
    }
    for assoc in root
        .children()
        .filter(|n| n.tag_name().name() == "participantstreamassoc")
    {
        let Some(id) = assoc.attribute("participant_id") else {
            continue;
        };
        for send in assoc.children().filter(|c| c.tag_name().name() == "send") {
            if let Some(stream) = send.text() {
                sends.push((id.to_string(), stream.trim().to_string()));
            }
        }
    }
    for (participant, stream) in sends {
        if let Some(label) = labels.get(&stream) {
            metadata.senders.insert(label.clone(), participant);
        }
    }
    Some(metadata)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_form_maps_each_label_to_its_sender() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<recording xmlns="urn:ietf:params:xml:ns:recording:1">
  <datamode>complete</datamode>
  <session session_id="s1"><sipSessionID>ab</sipSessionID></session>
  <participant participant_id="p1"><nameID aor="sip:alice@example.com"><name xml:lang="en">Alice</name></nameID></participant>
  <participant participant_id="p2"><nameID aor="sip:+15550100@example.com"/></participant>
  <stream stream_id="st1" session_id="s1"><label>1</label></stream>
  <stream stream_id="st2" session_id="s1"><label>2</label></stream>
  <participantstreamassoc participant_id="p1"><send>st1</send><recv>st2</recv></participantstreamassoc>
  <participantstreamassoc participant_id="p2"><send>st2</send><recv>st1</recv></participantstreamassoc>
</recording>"#;
        let m = parse(xml.as_bytes()).unwrap();
        assert_eq!(m.sender_of("1").and_then(Participant::label), Some("Alice"));
        assert_eq!(
            m.sender_of("2").and_then(Participant::label),
            Some("sip:+15550100@example.com")
        );
        assert!(m.sender_of("3").is_none());
    }

    #[test]
    fn the_draft_form_and_junk() {
        let xml = r#"<recording xmlns="urn:ietf:params:xml:ns:recording">
  <participant id="p1"><nameID aor="sip:agent@example.com"><name>Agent 7</name></nameID><send>st9</send></participant>
  <stream id="x" stream_id="st9"><label>9</label></stream></recording>"#;
        let m = parse(xml.as_bytes()).unwrap();
        assert_eq!(m.sender_of("9").and_then(Participant::label), Some("Agent 7"));
        assert!(parse(b"<html/>").is_none());
        assert!(parse(b"<recording><unclosed></recording>").is_none());
    }
}
