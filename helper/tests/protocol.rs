// SPDX-License-Identifier: GPL-3.0-or-later
//! The JSON protocol as `almost` really prints it: every line of every
//! command's `--json` output reads back as almost-protocol's `Event`, each
//! result under its documented command word with `"protocol"`; `overview`
//! is `status`, `layer list` and `config show` in one answer; `layer new
//! --host` takes a path of the host below the root (what the panel's
//! folder chooser gives) and refuses any other.

mod common;
mod layer_support;

use almost_protocol::{CommandResult, Event};
use layer_support::LayerBox;

use common::Run;

/// The events of a run, each line parsed as the protocol's `Event` (a line
/// that is not one fails the test), and its one result.
#[track_caller]
fn typed(r: &Run) -> (Vec<Event>, CommandResult) {
    let events: Vec<Event> = r
        .stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            Event::from_line(l)
                .unwrap_or_else(|e| panic!("not a protocol event ({e}): {l}\n{}", r.describe()))
        })
        .collect();
    let results: Vec<CommandResult> = events
        .iter()
        .filter_map(|e| match e {
            Event::Result(answer) => {
                assert_eq!(
                    answer.protocol,
                    almost_protocol::VERSION,
                    "{}",
                    r.describe()
                );
                Some(answer.result.clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(results.len(), 1, "one result\n{}", r.describe());
    (events, results[0].clone())
}

#[test]
fn every_command_answers_with_its_typed_result() {
    let sb = LayerBox::new();
    sb.write("/usr/lib/pkg/a.txt", "a\n");
    let id = sb.locked_with_layer("/usr/lib");
    sb.write("/usr/lib/pkg/b.txt", "b\n");
    let cases: [(&[&str], &str); 9] = [
        (&["status"], "status"),
        (&["overview"], "overview"),
        (&["config", "show"], "config"),
        (&["config", "get", "paths"], "config get"),
        (&["layer", "list"], "layer list"),
        (&["layer", "diff", &id], "layer diff"),
        (&["log", "-n", "3"], "log"),
        (&["lock"], "lock"),
        (&["run", "--", "sh", "-c", "exit 3"], "run"),
    ];
    for (args, command) in cases {
        let r = sb.almost_json(args);
        let (_, result) = typed(&r);
        assert_eq!(result.command(), command, "{}", r.describe());
        match result {
            CommandResult::LayerDiff(diff) => {
                let paths: Vec<String> = diff.changes.iter().map(|c| c.path_text()).collect();
                assert_eq!(paths, ["/usr/lib/pkg/b.txt"], "{}", r.describe());
            }
            CommandResult::Run(run) => {
                assert_eq!(run.exit_code, 3, "{}", r.describe());
                r.expect_code(3);
            }
            _ => {
                r.expect_ok();
            }
        }
    }
    // An error is typed too, with its kind and exit code.
    let r = sb.almost_json(&["layer", "diff", "nope"]);
    let event = Event::from_line(r.stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}\n{}", r.describe()));
    let Event::Error(failure) = event else {
        panic!("not an error\n{}", r.describe())
    };
    assert_eq!(failure.protocol, almost_protocol::VERSION);
    assert_eq!(Some(failure.exit_code), r.code, "{}", r.describe());
    sb.discard(&id);
    sb.finish();
}

#[test]
fn overview_is_status_layers_and_config_in_one_answer() {
    let sb = LayerBox::new();
    sb.write("/usr/lib/pkg/a.txt", "a\n");
    let id = sb.locked_with_layer("/usr/lib");
    sb.write("/usr/lib/pkg/b.txt", "b\n");
    let overview = match typed(&sb.almost_json(&["overview"])).1 {
        CommandResult::Overview(o) => *o,
        other => panic!("{other:?}"),
    };
    let CommandResult::Status(status) = typed(&sb.almost_json(&["status"])).1 else {
        panic!()
    };
    let CommandResult::LayerList(list) = typed(&sb.almost_json(&["layer", "list"])).1 else {
        panic!()
    };
    let CommandResult::Config(config) = typed(&sb.almost_json(&["config", "show"])).1 else {
        panic!()
    };
    assert_eq!(overview.status.mode, status.mode);
    assert_eq!(overview.status.paths, status.paths);
    // As root the changes are counted, as `layer list` counts them.
    assert_eq!(overview.layers, list.layers);
    assert_eq!(overview.layers[0].id, id);
    assert_eq!(overview.layers[0].changes, Some(1));
    assert_eq!(overview.config, config);
    // The files to watch are the host's, below the root.
    assert_eq!(
        overview.watch,
        [
            sb.root.join("run/almost/acted"),
            sb.root.join("etc/almost/almost.toml")
        ]
    );
    sb.discard(&id);
    sb.finish();
}

#[test]
fn layer_new_host_takes_a_host_path_below_the_root_only() {
    let sb = LayerBox::new();
    sb.write("/usr/share/doc/a", "a\n");
    // Outside the root, or not a full path: refused, nothing made.
    for bad in ["/elsewhere/usr/share", "usr/share"] {
        sb.almost(&["layer", "new", "--host", bad]).expect_code(5);
    }
    assert!(sb.layer_list().is_empty());
    let host = sb.root.join("usr/share");
    let r = sb.almost_json(&["layer", "new", "--host", host.to_str().expect("utf-8")]);
    r.expect_ok();
    let CommandResult::LayerNew(layer) = typed(&r).1 else {
        panic!("{}", r.describe())
    };
    assert_eq!(layer.path, std::path::Path::new("/usr/share"));
    sb.discard(&layer.id);
    sb.finish();
}
